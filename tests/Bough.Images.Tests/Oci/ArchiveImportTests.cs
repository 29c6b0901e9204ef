using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Bough.Images.Oci;
using Bough.TestSupport.Registry;

namespace Bough.Images.Tests.Oci;

public sealed class ArchiveImportTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly BlobStore _blobs;
    private readonly OciArchiveImporter _importer;

    public ArchiveImportTests()
    {
        _blobs = new BlobStore(Path.Combine(_tmp.Path, "data"));
        _importer = new OciArchiveImporter(_blobs);
    }

    public void Dispose() => _tmp.Dispose();

    private (OciLayoutBuilder Layout, BuiltImage Image) BuildLayout(string refName)
    {
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("etc/motd", "zstd")], LayerCompression.Zstd)));
        layout.Tag(image.Manifest, refName);
        return (layout, image);
    }

    private async Task AssertImportedAsync(ResolvedImage r, BuiltImage image)
    {
        Assert.Equal(image.Manifest.Digest, r.ManifestDigest);
        Assert.Equal(image.Config.Digest, r.ConfigDigest);
        Assert.Equal("/home/app", r.Config.WorkingDir);
        Assert.Equal(image.Layers.Select(l => l.Digest), r.Layers.Select(l => l.Digest));
        foreach (var l in r.Layers) Assert.Equal(l.Path, _blobs.TryGet(l.Digest));
        Assert.NotNull(_blobs.TryGet(r.ManifestDigest));
        var root = Path.Combine(_tmp.Path, "root");
        foreach (var l in r.Layers) await LayerFlattener.ApplyAsync(l, root, CancellationToken.None);
        Assert.Equal("zstd", File.ReadAllText(Path.Combine(root, "etc/motd")));
        Assert.True(File.Exists(Path.Combine(root, "bin/busybox")));
    }

    [Fact]
    public async Task Imports_an_oci_layout_directory_with_its_reference()
    {
        var (layout, image) = BuildLayout("example.com/team/app:2");
        var r = await _importer.ImportAsync(layout.Dir, null, CancellationToken.None);
        Assert.Equal("example.com/team/app:2", r.Reference);
        await AssertImportedAsync(r, image);
    }

    [Fact]
    public async Task A_bare_tag_ref_name_gives_no_reference()
    {
        var (layout, image) = BuildLayout("latest");
        var r = await _importer.ImportAsync(layout.Dir, null, CancellationToken.None);
        Assert.Null(r.Reference);
        Assert.Equal(image.Manifest.Digest, r.ManifestDigest);
    }

    [Fact]
    public async Task Imports_a_tar_of_an_oci_layout_and_picks_amd64_from_an_index()
    {
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var amd = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("etc/motd", "zstd")], LayerCompression.Zstd)));
        var arm = layout.AddImage(new ImageSpec([new LayerSpec([TarItem.File("arch", "arm")])]) { Architecture = "arm64" });
        layout.Tag(layout.AddIndex(arm, amd), "busybox:multi");
        var tar = Path.Combine(_tmp.Path, "layout.tar");
        await TarFile.CreateFromDirectoryAsync(layout.Dir, tar, includeBaseDirectory: false);

        var r = await _importer.ImportAsync(tar, null, CancellationToken.None);
        Assert.Equal("docker.io/library/busybox:multi", r.Reference);
        await AssertImportedAsync(r, amd);
        Assert.Null(_blobs.TryGet(arm.Layers[0].Digest)); // only the chosen platform is copied
        Assert.Empty(Directory.GetFiles(_blobs.StagingDir));
    }

    [Fact]
    public async Task A_corrupt_blob_in_a_layout_is_image_corrupt()
    {
        var (layout, image) = BuildLayout("x");
        var path = layout.BlobPath(image.Layers[1].Digest);
        var bytes = File.ReadAllBytes(path);
        bytes[^5] ^= 0x55;
        File.WriteAllBytes(path, bytes);
        var e = await Assert.ThrowsAsync<ImageException>(() => _importer.ImportAsync(layout.Dir, null, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
        Assert.Contains(image.Layers[1].Digest, e.Message);
        Assert.Null(_blobs.TryGet(image.Layers[1].Digest));
    }

    /// <summary>The classic <c>docker save</c> shape: manifest.json, &lt;hex&gt;.json config, &lt;id&gt;/layer.tar (uncompressed), and a symlinked duplicate layer.</summary>
    private static string BuildDockerSave(string path, bool corruptLayer = false)
    {
        var layer1 = TarBuilder.Tar(TestImages.BusyboxLayer());
        var layer2 = TarBuilder.Tar([TarItem.File("etc/motd", "saved")]);
        static string Hex(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
        var config = new JsonObject
        {
            ["architecture"] = "amd64", ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("A=1"), ["Cmd"] = new JsonArray("/bin/sh") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray("sha256:" + Hex(layer1), "sha256:" + Hex(layer2), "sha256:" + Hex(layer1)) },
        };
        var configBytes = Encoding.UTF8.GetBytes(config.ToJsonString());
        if (corruptLayer) layer2[600] ^= 0x01; // inside the file data of etc/motd
        var manifest = new JsonArray(new JsonObject
        {
            ["Config"] = Hex(configBytes) + ".json",
            ["RepoTags"] = new JsonArray("myapp:1.0"),
            ["Layers"] = new JsonArray("aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"),
        });
        using var fs = File.Create(path);
        using var w = new TarWriter(fs, TarEntryFormat.Pax);
        void Add(string name, byte[] data) => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
        Add("manifest.json", Encoding.UTF8.GetBytes(manifest.ToJsonString()));
        Add(Hex(configBytes) + ".json", configBytes);
        w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "aaaa/"));
        Add("aaaa/layer.tar", layer1);
        Add("bbbb/layer.tar", layer2);
        w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "cccc/layer.tar") { LinkName = "../aaaa/layer.tar" });
        return path;
    }

    [Fact]
    public async Task Imports_a_docker_save_tar()
    {
        var tar = BuildDockerSave(Path.Combine(_tmp.Path, "save.tar"));
        var r = await _importer.ImportAsync(tar, null, CancellationToken.None);
        Assert.Equal("docker.io/library/myapp:1.0", r.Reference);
        Assert.Equal(["A=1"], r.Config.Env);
        Assert.Equal(3, r.Layers.Count);
        Assert.Equal(r.Layers[0].Digest, r.Layers[2].Digest);
        Assert.All(r.Layers, l => Assert.Equal("application/vnd.oci.image.layer.v1.tar", l.MediaType));
        Assert.NotNull(_blobs.TryGet(r.ManifestDigest));
        Assert.NotNull(_blobs.TryGet(r.ConfigDigest));

        var root = Path.Combine(_tmp.Path, "root");
        foreach (var l in r.Layers) await LayerFlattener.ApplyAsync(l, root, CancellationToken.None);
        Assert.Equal("saved", File.ReadAllText(Path.Combine(root, "etc/motd")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(root, "bin/sh")).LinkTarget);
    }

    [Fact]
    public async Task A_docker_save_layer_not_matching_its_diff_id_is_image_corrupt()
    {
        var tar = BuildDockerSave(Path.Combine(_tmp.Path, "bad.tar"), corruptLayer: true);
        var e = await Assert.ThrowsAsync<ImageException>(() => _importer.ImportAsync(tar, null, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
        Assert.Contains("bbbb/layer.tar", e.Message);
    }

    [Fact]
    public async Task Neither_shape_or_missing_path_is_invalid_request()
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => _importer.ImportAsync(Path.Combine(_tmp.Path, "nope"), null, CancellationToken.None));
        Assert.Equal("invalid_request", e.Code);
        var empty = Directory.CreateDirectory(Path.Combine(_tmp.Path, "empty")).FullName;
        e = await Assert.ThrowsAsync<ImageException>(() => _importer.ImportAsync(empty, null, CancellationToken.None));
        Assert.Equal("invalid_request", e.Code);
    }
}
