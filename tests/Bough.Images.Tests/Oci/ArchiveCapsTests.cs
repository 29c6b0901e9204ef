using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using Bough.Images.Oci;
using Bough.TestSupport.Registry;
using Xunit.Abstractions;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// Imports of hostile archives: endless members (FIFOs fed by <c>cat /dev/zero</c>), declared sizes past
/// the caps, gzip bombs and links leading out of a layout. Each stops with a clear error, holding at
/// most a cap's worth of bytes, and leaves no staging files behind.
/// </summary>
public sealed class ArchiveCapsTests(ITestOutputHelper output) : IDisposable
{
    private const int KiB = 1024;
    private readonly TempDir _tmp = new();
    private readonly List<Process> _feeders = [];

    private BlobStore Blobs => new(Path.Combine(_tmp.Path, "data"));

    public void Dispose()
    {
        foreach (var p in _feeders)
        {
            try { if (!p.HasExited) p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit(5000);
            p.Dispose();
        }
        _tmp.Dispose();
    }

    /// <summary>Replaces <paramref name="path"/> with a FIFO that yields zeros for as long as anyone reads.</summary>
    private void MakeEndless(string path)
    {
        File.Delete(path);
        using (var mk = Process.Start(new ProcessStartInfo("mkfifo", [path]))!) { mk.WaitForExit(); Assert.Equal(0, mk.ExitCode); }
        // Blocks opening the FIFO until the importer opens it, then streams until the importer closes it (SIGPIPE).
        _feeders.Add(Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "exec cat /dev/zero > \"$0\"", path]))!);
    }

    private (OciLayoutBuilder Layout, BuiltImage Image) Layout(params string[] env)
    {
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox() with { Env = env.Length > 0 ? env : ["PATH=/bin"] });
        layout.Tag(image.Manifest, "example.com/caps/app:1");
        return (layout, image);
    }

    private async Task<ImageException> ImportFailsAsync(string path, ImageLimits limits)
    {
        var blobs = Blobs;
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            new OciArchiveImporter(blobs, limits).ImportAsync(path, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        output.WriteLine(e.Message);
        Assert.Empty(Directory.Exists(blobs.StagingDir) ? Directory.GetFileSystemEntries(blobs.StagingDir) : []);
        return e;
    }

    [Fact]
    public async Task An_endless_config_blob_stops_at_MaxConfigBytes()
    {
        var (layout, image) = Layout();
        MakeEndless(layout.BlobPath(image.Config.Digest)); // the descriptor still declares the small size
        var e = await ImportFailsAsync(layout.Dir, new ImageLimits { MaxConfigBytes = 64 * KiB });
        Assert.Equal("image_unsupported", e.Code);
        Assert.Contains("MaxConfigBytes", e.Message);
    }

    [Fact]
    public async Task An_endless_index_json_stops_at_MaxDocumentBytes()
    {
        var (layout, _) = Layout();
        MakeEndless(Path.Combine(layout.Dir, "index.json"));
        var e = await ImportFailsAsync(layout.Dir, new ImageLimits { MaxDocumentBytes = 64 * KiB });
        Assert.Equal("image_unsupported", e.Code);
        Assert.Contains("MaxDocumentBytes", e.Message);
    }

    [Fact]
    public async Task A_config_declared_larger_than_MaxConfigBytes_is_refused_before_it_is_read()
    {
        var (layout, image) = Layout("BIG=" + new string('x', 100 * KiB));
        var e = await ImportFailsAsync(layout.Dir, new ImageLimits { MaxConfigBytes = 64 * KiB });
        Assert.Equal("image_unsupported", e.Code);
        Assert.Contains($"config {image.Config.Digest} is {image.Config.Size} bytes", e.Message);
        Assert.Null(Blobs.TryGet(image.Config.Digest));
    }

    [Fact]
    public async Task A_layer_declared_larger_than_MaxLayerBytes_is_refused_before_it_is_copied()
    {
        var (layout, image) = Layout();
        var e = await ImportFailsAsync(layout.Dir, new ImageLimits { MaxLayerBytes = 64 * KiB });
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("MaxLayerBytes", e.Message);
        Assert.Null(Blobs.TryGet(image.Layers[0].Digest));
    }

    [Fact]
    public async Task An_endless_docker_save_layer_stops_at_MaxLayerBytes()
    {
        var dir = Path.Combine(_tmp.Path, "save");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "config.json"), """{"architecture":"amd64","os":"linux","config":{}}""");
        await File.WriteAllTextAsync(Path.Combine(dir, "manifest.json"), """[{"Config":"config.json","RepoTags":["caps/save:1"],"Layers":["layer.tar"]}]""");
        MakeEndless(Path.Combine(dir, "layer.tar"));
        var e = await ImportFailsAsync(dir, new ImageLimits { MaxLayerBytes = 4 << 20 });
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("layer.tar is more than 4194304 bytes", e.Message);
    }

    [Fact]
    public async Task A_gzipped_archive_that_decompresses_past_MaxImageBytes_is_refused_and_its_scratch_file_removed()
    {
        var sparse = Path.Combine(_tmp.Path, "zeros");
        using (var f = File.Create(sparse)) f.SetLength(256L << 20);
        var archive = Path.Combine(_tmp.Path, "image.tar.gz");
        await using (var file = File.Create(archive))
        await using (var gz = new GZipStream(file, CompressionLevel.Optimal))
        await using (var writer = new TarWriter(gz, TarEntryFormat.Pax))
        await using (var data = File.OpenRead(sparse))
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "blobs/sha256/zeros") { DataStream = data });
        Assert.True(new FileInfo(archive).Length < 2 << 20);

        var e = await ImportFailsAsync(archive, new ImageLimits { MaxImageBytes = 8 << 20 });
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("MaxImageBytes", e.Message);
    }

    [Fact]
    public async Task A_layout_blob_that_links_out_of_the_directory_is_not_read()
    {
        var (layout, image) = Layout();
        // The very bytes the digest names, but outside the layout: only the link's destination can stop it.
        var outside = Path.Combine(_tmp.Path, "outside-config.json");
        File.Move(layout.BlobPath(image.Config.Digest), outside);
        File.CreateSymbolicLink(layout.BlobPath(image.Config.Digest), outside);

        var e = await ImportFailsAsync(layout.Dir, new ImageLimits());
        Assert.Equal("image_corrupt", e.Code);
        Assert.Contains("leads out of the directory", e.Message);

        // A link that stays inside the layout is fine.
        var inside = Path.Combine(layout.Dir, "config-copy");
        File.Move(outside, inside);
        File.Delete(layout.BlobPath(image.Config.Digest));
        File.CreateSymbolicLink(layout.BlobPath(image.Config.Digest), "../../config-copy");
        var r = await new OciArchiveImporter(Blobs).ImportAsync(layout.Dir, null, CancellationToken.None);
        Assert.Equal(image.Config.Digest, r.ConfigDigest);
    }
}

/// <summary>A registry serving an image whose config is larger than the cap: refused before download.</summary>
public sealed class RegistryConfigCapTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task A_config_larger_than_MaxConfigBytes_is_image_unsupported_and_never_stored()
    {
        using var registry = await LocalRegistry.StartAsync();
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox() with { Env = ["BIG=" + new string('x', 200 * 1024)] });
        layout.Tag(image.Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{registry.Host}/caps/config:1");

        var blobs = new BlobStore(Path.Combine(_tmp.Path, "data"));
        using var puller = new OciPuller(blobs, new RegistryOptions { Limits = new ImageLimits { MaxConfigBytes = 64 * 1024 } });
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{registry.Host}/caps/config:1"), true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("image_unsupported", e.Code);
        Assert.Contains("MaxConfigBytes", e.Message);
        Assert.Null(blobs.TryGet(image.Config.Digest));

        // Within the cap the same image pulls.
        using var generous = new OciPuller(blobs, new RegistryOptions());
        var ok = await generous.PullAsync(ImageReference.Parse($"{registry.Host}/caps/config:1"), true, null, CancellationToken.None);
        Assert.StartsWith("BIG=", ok.Config.Env[0], StringComparison.Ordinal);
    }
}
