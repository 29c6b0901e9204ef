using System.Diagnostics;
using Bough.AgentClient;

namespace Bough.Agent.Tests;

/// <summary>stat with owner, group and link target; exists; mkdir's created flag; move; list with depth. Real files in a temp dir.</summary>
public sealed class FileMetadataTests(AgentFixture fixture) : IClassFixture<AgentFixture>, IDisposable
{
    private readonly TempDir _dir = new("agent-meta");
    private string Root => _dir.Path;
    private AgentConnection C => fixture.Connection;

    public void Dispose() => _dir.Dispose();

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(file, args);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public async Task Stat_reports_owner_group_permissions_and_symlink_target()
    {
        string file = $"{Root}/tool";
        await File.WriteAllTextAsync(file, "#!/bin/sh\n");
        Run("chmod", "4755", file);
        File.CreateSymbolicLink($"{Root}/link", "tool");
        await File.WriteAllTextAsync($"{Root}/orphan", "x");
        Run("chown", "4242:4343", $"{Root}/orphan");

        var st = await C.StatAsync(file, ExecHelpers.Timeout(10));
        Assert.Equal(AgentFileType.File, st.Type);
        Assert.Equal("-rwsr-xr-x", st.Permissions);
        Assert.Equal(0x9ED, st.Mode);
        Assert.Equal("root", st.Owner);
        Assert.Equal("root", st.Group);
        Assert.Equal(0u, st.Uid);
        Assert.Equal(file, st.Path);
        Assert.Equal(10, st.Size);

        var link = await C.StatAsync($"{Root}/link", ExecHelpers.Timeout(10));
        Assert.Equal(AgentFileType.Symlink, link.Type);
        Assert.Equal("tool", link.SymlinkTarget);
        Assert.StartsWith("l", link.Permissions);

        var orphan = await C.StatAsync($"{Root}/orphan", ExecHelpers.Timeout(10));
        Assert.Equal(4242u, orphan.Uid);
        Assert.Equal(4343u, orphan.Gid);
        Assert.Null(orphan.Owner); // no passwd entry
        Assert.Null(orphan.Group);

        var dir = await C.StatAsync(Root, ExecHelpers.Timeout(10));
        Assert.StartsWith("d", dir.Permissions);
    }

    [Fact]
    public async Task Exists_and_mkdir_say_what_was_there()
    {
        Assert.False(await C.ExistsAsync($"{Root}/new", ExecHelpers.Timeout(10)));
        Assert.True(await C.MkdirAsync($"{Root}/new/deeper", ExecHelpers.Timeout(10)));
        Assert.False(await C.MkdirAsync($"{Root}/new/deeper", ExecHelpers.Timeout(10)));
        Assert.True(await C.ExistsAsync($"{Root}/new/deeper", ExecHelpers.Timeout(10)));
        Assert.True(Directory.Exists($"{Root}/new/deeper"));
        await File.WriteAllTextAsync($"{Root}/file", "x");
        Assert.False(await C.ExistsAsync($"{Root}/file/below", ExecHelpers.Timeout(10)));
        var e = await Assert.ThrowsAsync<AgentException>(() => C.MkdirAsync($"{Root}/file", ExecHelpers.Timeout(10)));
        Assert.Equal("already_exists", e.Code);
    }

    [Fact]
    public async Task Move_renames_creates_parents_and_reports_the_new_entry()
    {
        await File.WriteAllTextAsync($"{Root}/a.txt", "content");
        var moved = await C.MoveAsync($"{Root}/a.txt", $"{Root}/sub/dir/b.txt", ExecHelpers.Timeout(10));
        Assert.Equal("b.txt", moved.Name);
        Assert.Equal($"{Root}/sub/dir/b.txt", moved.Path);
        Assert.Equal(7, moved.Size);
        Assert.False(File.Exists($"{Root}/a.txt"));
        Assert.Equal("content", await File.ReadAllTextAsync($"{Root}/sub/dir/b.txt"));

        Directory.CreateDirectory($"{Root}/d1/inner");
        var dir = await C.MoveAsync($"{Root}/d1", $"{Root}/d2", ExecHelpers.Timeout(10));
        Assert.Equal(AgentFileType.Dir, dir.Type);
        Assert.True(Directory.Exists($"{Root}/d2/inner"));

        var missing = await Assert.ThrowsAsync<AgentException>(() => C.MoveAsync($"{Root}/nope", $"{Root}/x", ExecHelpers.Timeout(10)));
        Assert.Equal("file_not_found", missing.Code);
        var root = await Assert.ThrowsAsync<AgentException>(() => C.MoveAsync("/", $"{Root}/x", ExecHelpers.Timeout(10)));
        Assert.Equal("bad_request", root.Code);
    }

    [Fact]
    public async Task List_with_depth_gives_relative_paths_and_does_not_enter_symlinks()
    {
        Directory.CreateDirectory($"{Root}/t/a/b/c");
        await File.WriteAllTextAsync($"{Root}/t/top.txt", "1");
        await File.WriteAllTextAsync($"{Root}/t/a/mid.txt", "22");
        await File.WriteAllTextAsync($"{Root}/t/a/b/low.txt", "333");
        File.CreateSymbolicLink($"{Root}/t/a/loop", $"{Root}/t");

        static string[] Paths(IEnumerable<AgentFileEntry> es, string root) => [.. es.Select(e => e.Path![(root.Length + 1)..]).Order(StringComparer.Ordinal)];

        var one = await C.ListAsync($"{Root}/t", ExecHelpers.Timeout(10));
        Assert.Equal(["a", "top.txt"], Paths(one, $"{Root}/t"));
        var two = await C.ListAsync($"{Root}/t", 2, ListLimits.Default, ExecHelpers.Timeout(10));
        Assert.Equal(["a", "a/b", "a/loop", "a/mid.txt", "top.txt"], Paths(two, $"{Root}/t"));
        var all = await C.ListAsync($"{Root}/t", 10, ListLimits.Default, ExecHelpers.Timeout(10));
        Assert.Equal(["a", "a/b", "a/b/c", "a/b/low.txt", "a/loop", "a/mid.txt", "top.txt"], Paths(all, $"{Root}/t"));
        var loop = all.Single(e => e.Name == "loop");
        Assert.Equal(AgentFileType.Symlink, loop.Type);
        Assert.Equal($"{Root}/t", loop.SymlinkTarget);
        Assert.Equal("root", all.Single(e => e.Name == "low.txt").Owner);

        var limited = await Assert.ThrowsAsync<AgentException>(() => C.ListAsync($"{Root}/t", 10, new ListLimits(3, 1 << 20), ExecHelpers.Timeout(10)));
        Assert.Equal(AgentException.TooLarge, limited.Code);
    }
}
