namespace Bough.Vmm.Tests;

/// <summary>The qemu-img wrapper with the real qemu-img on temp files.</summary>
public sealed class QemuImgTests : IDisposable
{
    private readonly TempDir _dir = new("qimg");

    public void Dispose() => _dir.Dispose();

    private string PathOf(string name) => Path.Combine(_dir.Path, name);

    [Fact]
    public async Task Overlay_names_its_backing_file_by_absolute_path_with_an_explicit_format()
    {
        await QemuImg.CreateAsync(PathOf("base.qcow2"), 32L << 20, CancellationToken.None);
        // Relative arguments: the header must still carry the absolute backing path.
        string cwd = Environment.CurrentDirectory;
        string relBase = Path.GetRelativePath(cwd, PathOf("base.qcow2"));
        string relOverlay = Path.GetRelativePath(cwd, PathOf("overlay.qcow2"));
        await QemuImg.CreateOverlayAsync(relBase, relOverlay, CancellationToken.None);

        var chain = await QemuImg.BackingChainAsync(PathOf("overlay.qcow2"), CancellationToken.None);
        Assert.Equal(2, chain.Count);
        Assert.Equal(new QemuImageInfo(PathOf("overlay.qcow2"), "qcow2", 32L << 20, PathOf("base.qcow2")), chain[0]);
        Assert.Equal(new QemuImageInfo(PathOf("base.qcow2"), "qcow2", 32L << 20, null), chain[1]);
        var raw = await ProcessRunner.RunAsync("qemu-img", ["info", PathOf("overlay.qcow2")], CancellationToken.None);
        Assert.Contains($"backing file: {PathOf("base.qcow2")}", raw.Stdout);
        Assert.Contains("backing file format: qcow2", raw.Stdout);
    }

    [Fact]
    public async Task Overlay_of_an_image_in_use_does_not_open_it()
    {
        // A backing file that does not exist stands for one qemu-img may not open: only -u gets past it.
        string missing = PathOf("locked.qcow2");
        var e = await Assert.ThrowsAsync<QemuImgException>(() =>
            QemuImg.CreateOverlayAsync(missing, PathOf("a.qcow2"), CancellationToken.None));
        Assert.NotEqual(0, e.ExitCode);
        Assert.Contains("locked.qcow2", e.Stderr);
        Assert.Contains("locked.qcow2", e.Message);

        await QemuImg.CreateOverlayOfImageInUseAsync(missing, PathOf("b.qcow2"), 48L << 20, CancellationToken.None);
        var raw = await ProcessRunner.RunAsync("qemu-img", ["info", "--output=json", PathOf("b.qcow2")], CancellationToken.None);
        Assert.Contains("\"virtual-size\": 50331648", raw.Stdout);
        Assert.Contains($"\"backing-filename\": \"{missing}\"", raw.Stdout);
    }

    [Fact]
    public async Task Raw_converts_to_qcow2_and_a_chain_flattens_into_one_standalone_image()
    {
        string raw = PathOf("fs.raw");
        var content = new byte[4 << 20];
        new Random(7).NextBytes(content.AsSpan(0, 1 << 20));
        await File.WriteAllBytesAsync(raw, content);
        await QemuImg.ConvertRawToQcow2Async(raw, PathOf("base.qcow2"), CancellationToken.None);
        var info = await QemuImg.InfoAsync(PathOf("base.qcow2"), CancellationToken.None);
        Assert.Equal(("qcow2", 4L << 20, (string?)null), (info.Format, info.VirtualSize, info.BackingFile));
        Assert.Equal(0, (await ProcessRunner.RunAsync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", raw, PathOf("base.qcow2")],
            CancellationToken.None)).ExitCode);

        await QemuImg.CreateOverlayAsync(PathOf("base.qcow2"), PathOf("top.qcow2"), CancellationToken.None);
        await QemuImg.FlattenAsync(PathOf("top.qcow2"), PathOf("flat.qcow2"), CancellationToken.None);
        var flat = Assert.Single(await QemuImg.BackingChainAsync(PathOf("flat.qcow2"), CancellationToken.None));
        Assert.Null(flat.BackingFile);
        File.Delete(PathOf("base.qcow2")); // shares nothing with the chain
        Assert.Equal(0, (await ProcessRunner.RunAsync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", raw, PathOf("flat.qcow2")],
            CancellationToken.None)).ExitCode);
    }
}
