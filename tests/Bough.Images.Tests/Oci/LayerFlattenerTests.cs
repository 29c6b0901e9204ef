using System.Formats.Tar;
using System.Text;
using Bough.Images.Oci;
using Bough.TestSupport.Registry;

namespace Bough.Images.Tests.Oci;

/// <summary>Layers built in memory as real tar files (gzip/zstd via the same tools as production), applied to a temp root.</summary>
public sealed class LayerFlattenerTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private int _n;

    private string Root => Path.Combine(_tmp.Path, "root");
    private string Outside => Path.Combine(_tmp.Path, "outside");

    public LayerFlattenerTests()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Outside);
        File.WriteAllText(Path.Combine(Outside, "keep.txt"), "outside");
    }

    public void Dispose() => _tmp.Dispose();

    private async Task<LayerApplyStats> ApplyAsync(LayerCompression c, params TarItem[] items)
    {
        var bytes = TarBuilder.Layer(items, c);
        var path = Path.Combine(_tmp.Path, $"layer{_n++}");
        await File.WriteAllBytesAsync(path, bytes);
        var blob = new LayerBlob("sha256:" + new string('0', 64), OciLayoutBuilder.LayerMediaType(c), bytes.Length, path);
        return await LayerFlattener.ApplyAsync(blob, Root, CancellationToken.None);
    }

    private Task<LayerApplyStats> ApplyAsync(params TarItem[] items) => ApplyAsync(LayerCompression.Gzip, items);

    private string R(string rel) => Path.Combine(Root, rel);

    private void AssertOutsideUntouched()
    {
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(Outside).Select(Path.GetFileName));
        Assert.Equal("outside", File.ReadAllText(Path.Combine(Outside, "keep.txt")));
    }

    [Theory]
    [InlineData(LayerCompression.None)]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    public async Task Files_dirs_and_symlinks_land_in_every_compression(LayerCompression c)
    {
        var stats = await ApplyAsync(c,
            TarItem.Dir("etc"), TarItem.File("etc/hostname", "box\n"), TarItem.Symlink("etc/link", "/etc/hostname"),
            TarItem.File("usr/bin/tool", "#!/bin/sh\n", (UnixFileMode)0b111_101_101)); // parent dirs implicit
        Assert.Equal("box\n", File.ReadAllText(R("etc/hostname")));
        Assert.Equal("/etc/hostname", new FileInfo(R("etc/link")).LinkTarget); // verbatim, absolute, not resolved on the host
        Assert.True(File.Exists(R("usr/bin/tool")));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(R("usr/bin/tool")));
        Assert.Equal(new LayerApplyStats(2, 1, 1, 0, 0, 0), stats);
    }

    [Fact]
    public async Task Zstd_is_detected_by_magic_even_when_mislabelled()
    {
        var bytes = TarBuilder.Layer([TarItem.File("a", "zstd!")], LayerCompression.Zstd);
        var path = Path.Combine(_tmp.Path, "mislabelled");
        await File.WriteAllBytesAsync(path, bytes);
        await LayerFlattener.ApplyAsync(new LayerBlob("sha256:" + new string('1', 64), "application/vnd.docker.image.rootfs.diff.tar.gzip", bytes.Length, path), Root, CancellationToken.None);
        Assert.Equal("zstd!", File.ReadAllText(R("a")));
    }

    [Fact]
    public async Task Truncated_zstd_layer_is_image_corrupt()
    {
        var bytes = TarBuilder.Layer([TarItem.File("a", new string('x', 100_000))], LayerCompression.Zstd);
        var path = Path.Combine(_tmp.Path, "truncated");
        await File.WriteAllBytesAsync(path, bytes[..(bytes.Length / 2)]);
        var e = await Assert.ThrowsAsync<ImageException>(() => LayerFlattener.ApplyAsync(
            new LayerBlob("sha256:" + new string('2', 64), OciLayoutBuilder.LayerMediaType(LayerCompression.Zstd), bytes.Length, path), Root, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
    }

    [Fact]
    public async Task Whiteout_removes_lower_layer_entries()
    {
        await ApplyAsync(TarItem.File("etc/a", "a"), TarItem.File("etc/b", "b"), TarItem.Dir("var/cache"), TarItem.File("var/cache/x", "x"),
            TarItem.Symlink("etc/lnk", "/nowhere"));
        var stats = await ApplyAsync(TarItem.Whiteout("etc/a"), TarItem.Whiteout("var/cache"), TarItem.Whiteout("etc/lnk"), TarItem.Whiteout("etc/never-existed"));
        Assert.False(File.Exists(R("etc/a")));
        Assert.True(File.Exists(R("etc/b")));
        Assert.False(Directory.Exists(R("var/cache")));
        Assert.Null(new FileInfo(R("etc/lnk")).LinkTarget);
        Assert.Equal(4, stats.Whiteouts);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(R("etc")), p => Path.GetFileName(p).StartsWith(".wh.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Whiteout_of_a_directory_holding_a_link_to_outside_deletes_only_the_link()
    {
        await ApplyAsync(TarItem.Dir("d"), TarItem.Symlink("d/out", Outside), TarItem.File("d/f", "f"));
        await ApplyAsync(TarItem.Whiteout("d"));
        Assert.False(Directory.Exists(R("d")));
        AssertOutsideUntouched();
    }

    [Fact]
    public async Task Whiteout_in_the_same_layer_does_not_hide_that_layers_entry()
    {
        await ApplyAsync(TarItem.File("x", "new"), TarItem.Whiteout("x"));
        Assert.Equal("new", File.ReadAllText(R("x")));
    }

    [Fact]
    public async Task Opaque_directory_hides_lower_contents_but_keeps_its_own_layer()
    {
        await ApplyAsync(TarItem.File("app/old1", "1"), TarItem.File("app/sub/old2", "2"), TarItem.File("app/sub/keepname", "lower"), TarItem.File("other/z", "z"));
        // The marker after this layer's own entries (the order varies between tools): they must stay.
        await ApplyAsync(TarItem.File("app/new", "n"), TarItem.File("app/sub/keepname", "upper"), TarItem.Opaque("app"));
        Assert.Equal(["keepname"], Directory.GetFileSystemEntries(R("app/sub")).Select(Path.GetFileName));
        Assert.Equal("upper", File.ReadAllText(R("app/sub/keepname")));
        Assert.Equal(["new", "sub"], Directory.GetFileSystemEntries(R("app")).Select(Path.GetFileName).Order());
        Assert.True(File.Exists(R("other/z")));
        Assert.False(File.Exists(R("app/.wh..wh..opq")));

        // Marker first (Docker's order).
        await ApplyAsync(TarItem.Opaque("other"), TarItem.File("other/y", "y"));
        Assert.Equal(["y"], Directory.GetFileSystemEntries(R("other")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Hard_link_shares_the_inode_of_an_entry_inside_root()
    {
        var stats = await ApplyAsync(TarItem.File("bin/busybox", "BB"), TarItem.HardLink("bin/sh", "bin/busybox"), TarItem.HardLink("bin/ash", "/bin/busybox"));
        Assert.Equal(2, stats.HardLinks);
        File.AppendAllText(R("bin/busybox"), "+");
        Assert.Equal("BB+", File.ReadAllText(R("bin/sh")));
        Assert.Equal("BB+", File.ReadAllText(R("bin/ash")));
    }

    [Theory]
    [InlineData("../outside/keep.txt")]
    [InlineData("/../../outside/keep.txt")]
    [InlineData("missing")]
    public async Task Hard_link_to_outside_or_missing_is_rejected(string target)
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.HardLink("evil", target)));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("'evil'", e.Message);
        Assert.False(File.Exists(R("evil")));
        AssertOutsideUntouched();
    }

    [Fact]
    public async Task Hard_link_through_a_symlinked_directory_is_rejected()
    {
        await ApplyAsync(TarItem.Symlink("out", Outside));
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.HardLink("stolen", "out/keep.txt")));
        Assert.Equal("layer_rejected", e.Code);
        Assert.False(File.Exists(R("stolen")));
    }

    [Fact]
    public async Task Devices_and_fifos_are_skipped_and_counted()
    {
        var stats = await ApplyAsync(TarItem.Dir("dev"), TarItem.CharDevice("dev/null"), TarItem.Fifo("dev/fifo"), TarItem.File("dev/ok", "ok"));
        Assert.Equal(2, stats.SkippedSpecial);
        Assert.False(File.Exists(R("dev/null")));
        Assert.False(File.Exists(R("dev/fifo")));
        Assert.True(File.Exists(R("dev/ok")));
    }

    [Fact]
    public async Task Modes_owners_and_times_are_kept()
    {
        var t = new DateTimeOffset(2020, 5, 6, 7, 8, 9, TimeSpan.Zero);
        await ApplyAsync(
            new TarItem(TarEntryType.RegularFile, "usr/bin/su", "x"u8.ToArray(), Mode: (UnixFileMode)0b100_111_101_101, Uid: 0, Gid: 0, MTime: t), // 04755
            new TarItem(TarEntryType.Directory, "shared", Mode: (UnixFileMode)0b1_111_111_111, Uid: 1234, Gid: 4321, MTime: t),         // 01777
            new TarItem(TarEntryType.RegularFile, "shared/owned", "o"u8.ToArray(), Mode: (UnixFileMode)0b110_100_000, Uid: 1000, Gid: 1001, MTime: t),
            new TarItem(TarEntryType.SymbolicLink, "shared/lnk", LinkName: "owned", Uid: 1000, Gid: 1001, MTime: t));
        Assert.Equal((UnixFileMode)0b100_111_101_101, File.GetUnixFileMode(R("usr/bin/su")));
        Assert.Equal((UnixFileMode)0b1_111_111_111, File.GetUnixFileMode(R("shared")));
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(R("shared/owned")));
        Assert.Equal(t.UtcDateTime, File.GetLastWriteTimeUtc(R("shared/owned")));
        Assert.Equal(t.UtcDateTime, Directory.GetLastWriteTimeUtc(R("shared"))); // set after its children were written
        if (await IdAsync("-u") == "0")
        {
            Assert.Equal("1000:1001", await StatAsync("%u:%g", R("shared/owned")));
            Assert.Equal("1234:4321", await StatAsync("%u:%g", R("shared")));
            Assert.Equal("1000:1001", await StatAsync("%u:%g", R("shared/lnk"))); // lchown: the link, not its target
        }
    }

    [Fact]
    public async Task Dot_dot_escape_is_rejected_and_nothing_is_written_outside()
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.File("../outside/evil", "pwned")));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("../outside/evil", e.Message);
        e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.File("a/../../../outside/evil2", "pwned")));
        Assert.Equal("layer_rejected", e.Code);
        AssertOutsideUntouched();
        Assert.False(File.Exists(Path.Combine(_tmp.Path, "evil")));
    }

    [Fact]
    public async Task Inner_dot_dot_that_stays_inside_is_allowed()
    {
        await ApplyAsync(TarItem.File("a/b/../c", "c"));
        Assert.Equal("c", File.ReadAllText(R("a/c")));
    }

    [Fact]
    public async Task Symlink_parent_escape_is_rejected_with_nothing_written_outside()
    {
        // The classic: "link -> /tmp/outside", then "link/file" — in one layer or across layers.
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.Symlink("link", Outside), TarItem.File("link/file", "pwned")));
        Assert.Equal("layer_rejected", e.Code);
        Assert.Contains("link/file", e.Message);
        Assert.Contains("symbolic link", e.Message);
        AssertOutsideUntouched();

        e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.Dir("link/sub")));
        Assert.Equal("layer_rejected", e.Code);
        e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.Whiteout("link/keep.txt")));
        Assert.Equal("layer_rejected", e.Code);
        e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.Opaque("link")));
        Assert.Equal("layer_rejected", e.Code);
        AssertOutsideUntouched();
    }

    [Fact]
    public async Task A_relative_symlink_climbing_out_is_kept_verbatim_but_never_followed()
    {
        await ApplyAsync(TarItem.Symlink("up", "../../../../outside"), TarItem.Symlink("etc", "../outside")); // root/etc -> the real outside dir
        Assert.Equal("../../../../outside", new FileInfo(R("up")).LinkTarget);
        var e = await Assert.ThrowsAsync<ImageException>(() => ApplyAsync(TarItem.File("etc/passwd", "pwned")));
        Assert.Equal("layer_rejected", e.Code);
        AssertOutsideUntouched();
    }

    [Fact]
    public async Task A_file_replacing_a_symlink_replaces_the_link_not_its_target()
    {
        await ApplyAsync(TarItem.Symlink("cfg", Path.Combine(Outside, "keep.txt")));
        await ApplyAsync(TarItem.File("cfg", "mine"));
        Assert.Null(new FileInfo(R("cfg")).LinkTarget);
        Assert.Equal("mine", File.ReadAllText(R("cfg")));
        AssertOutsideUntouched();
    }

    [Fact]
    public async Task Absolute_names_are_relative_to_root()
    {
        await ApplyAsync(TarItem.File("/etc/abs", "abs"), TarItem.File("./etc/dot", "dot"), TarItem.Dir("./"), TarItem.File("//etc//double", "d"));
        Assert.Equal("abs", File.ReadAllText(R("etc/abs")));
        Assert.Equal("dot", File.ReadAllText(R("etc/dot")));
        Assert.Equal("d", File.ReadAllText(R("etc/double")));
        Assert.False(File.Exists("/etc/abs"));
    }

    [Fact]
    public async Task File_and_directory_replace_each_other()
    {
        await ApplyAsync(TarItem.File("x", "file"), TarItem.File("y/inner", "in"));
        await ApplyAsync(TarItem.Dir("x"), TarItem.File("x/child", "c"), TarItem.File("y", "now a file"));
        Assert.Equal("c", File.ReadAllText(R("x/child")));
        Assert.Equal("now a file", File.ReadAllText(R("y")));
        // A symlink in place of a directory, and back.
        await ApplyAsync(TarItem.Symlink("x", "y"));
        Assert.Equal("y", new FileInfo(R("x")).LinkTarget);
        await ApplyAsync(TarItem.Dir("x"), TarItem.File("x/again", "a"));
        Assert.Equal("a", File.ReadAllText(R("x/again")));
    }

    [Fact]
    public async Task Not_a_tar_is_image_corrupt()
    {
        var path = Path.Combine(_tmp.Path, "garbage");
        await File.WriteAllBytesAsync(path, Encoding.ASCII.GetBytes(new string('z', 2000)));
        var e = await Assert.ThrowsAsync<ImageException>(() => LayerFlattener.ApplyAsync(
            new LayerBlob("sha256:" + new string('3', 64), OciLayoutBuilder.LayerMediaType(LayerCompression.None), 2000, path), Root, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
    }

    private static async Task<string> IdAsync(string arg) => await RunAsync("id", arg);
    private static async Task<string> StatAsync(string format, string path) => await RunAsync("stat", "-c", format, path);

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var s = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return s.Trim();
    }
}
