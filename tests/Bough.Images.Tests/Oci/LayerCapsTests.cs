using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using Bough.Images.Oci;
using Bough.TestSupport.Registry;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// Decompression bombs and entry floods, generated as real gzip/zstd tar files: the caps of
/// <see cref="ImageLimits"/> stop them while they stream, before they fill the disk.
/// </summary>
public sealed class LayerCapsTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _tmp = new();
    private int _n;

    private string Root => Path.Combine(_tmp.Path, "root");

    public void Dispose() => _tmp.Dispose();

    /// <summary>A tar whose one file is <paramref name="zeros"/> bytes of zeros (read from a sparse file, so nothing big is held).</summary>
    private string ZeroLayer(long zeros, LayerCompression compression, long zerosAfterEnd = 0)
    {
        var sparse = Path.Combine(_tmp.Path, $"sparse{_n}");
        using (var f = File.Create(sparse)) f.SetLength(zeros);
        var path = Path.Combine(_tmp.Path, $"layer{_n++}.tar");
        using (var file = File.Create(path))
        using (var gz = compression == LayerCompression.Gzip ? new GZipStream(file, CompressionLevel.Optimal) : (Stream)file)
        {
            using (var writer = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true))
            using (var data = File.OpenRead(sparse))
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "big") { DataStream = data });
            // Zeros after the end-of-archive blocks: a tar reader never asks for them, a decompressor still makes them.
            var chunk = new byte[MiB];
            for (long left = zerosAfterEnd; left > 0; left -= chunk.Length) gz.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        }
        File.Delete(sparse);
        if (compression != LayerCompression.Zstd) return path;
        using (var p = Process.Start(new ProcessStartInfo("zstd", ["-q", "-f", "--rm", path, "-o", path + ".zst"]))!)
        {
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }
        return path + ".zst";
    }

    private string ItemsLayer(IEnumerable<TarItem> items)
    {
        var path = Path.Combine(_tmp.Path, $"layer{_n++}");
        File.WriteAllBytes(path, TarBuilder.Layer(items, LayerCompression.Gzip));
        return path;
    }

    private static LayerBlob Blob(string path, string digestChar = "a") =>
        new("sha256:" + string.Concat(Enumerable.Repeat(digestChar, 64)), "application/vnd.oci.image.layer.v1.tar", new FileInfo(path).Length, path);

    private Task<LayerApplyStats> ApplyAsync(string path, ExtractionBudget budget, string digestChar = "a") =>
        LayerFlattener.ApplyAsync(Blob(path, digestChar), Root, budget, CancellationToken.None);

    [Theory]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    public async Task A_layer_bigger_than_MaxLayerBytes_uncompressed_stops_while_it_streams(LayerCompression compression)
    {
        var layer = ZeroLayer(256 * MiB, compression);
        Assert.True(new FileInfo(layer).Length < 2 * MiB); // a bomb: tiny on disk

        var budget = new ExtractionBudget(new ImageLimits { MaxLayerBytes = 8 * MiB });
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(layer, budget));

        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("MaxLayerBytes", e.Message);
        Assert.True(new FileInfo(Path.Combine(Root, "big")).Length <= 8 * MiB, "the file was written past the cap");
        Assert.InRange(budget.ImageBytes, 8 * MiB, 9 * MiB);
    }

    [Fact]
    public async Task Zeros_hidden_after_the_end_of_the_archive_count_too()
    {
        var layer = ZeroLayer(1024, LayerCompression.Gzip, zerosAfterEnd: 64 * MiB);
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(layer, new ExtractionBudget(new ImageLimits { MaxLayerBytes = 8 * MiB })));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("MaxLayerBytes", e.Message);
    }

    [Fact]
    public async Task Layers_together_bigger_than_MaxImageBytes_stop_at_the_layer_that_passes_it()
    {
        var budget = new ExtractionBudget(new ImageLimits { MaxLayerBytes = 8 * MiB, MaxImageBytes = 10 * MiB });
        await ApplyAsync(ZeroLayer(6 * MiB, LayerCompression.Gzip), budget, "a");
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(ZeroLayer(6 * MiB, LayerCompression.Gzip), budget, "b"));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("MaxImageBytes", e.Message);
        Assert.Contains(new string('b', 64), e.Message);
    }

    [Fact]
    public async Task More_entries_than_MaxImageEntries_across_layers_stop_the_flood()
    {
        var budget = new ExtractionBudget(new ImageLimits { MaxImageEntries = 100 });
        await ApplyAsync(ItemsLayer(Enumerable.Range(0, 60).Select(i => TarItem.File($"a{i}", ""))), budget, "a");
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            ApplyAsync(ItemsLayer(Enumerable.Range(0, 1000).Select(i => TarItem.File($"b{i}", ""))), budget, "b"));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("more than 100 entries", e.Message);
        Assert.Contains("MaxImageEntries", e.Message);
        Assert.Equal(100, Directory.GetFileSystemEntries(Root).Length); // 60 + 40, not a thousand more
    }

    [Fact]
    public async Task Within_the_caps_a_layer_applies_and_counts()
    {
        var budget = new ExtractionBudget(new ImageLimits { MaxLayerBytes = 8 * MiB, MaxImageEntries = 10 });
        await ApplyAsync(ZeroLayer(4 * MiB, LayerCompression.Gzip), budget);
        Assert.Equal(4 * MiB, new FileInfo(Path.Combine(Root, "big")).Length);
        Assert.Equal(1, budget.Entries);
    }
}
