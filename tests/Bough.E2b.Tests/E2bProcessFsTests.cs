using System.Text.Json;

namespace Bough.E2b.Tests;

/// <summary>
/// envd's process and filesystem RPCs beyond a foreground command and /files, through the
/// unmodified E2B SDK against a real daemon and the shared real VM: background processes with
/// stdin, a second handle, list and kill; a PTY with input and resize; stat, list with depth,
/// mkdir, rename, remove; watchDir.
/// </summary>
[Collection("e2b")]
public sealed class E2bProcessFsTests(E2bFixture f)
{
    [Fact]
    public async Task Background_process_takes_stdin_is_listed_reattached_and_killed()
    {
        var r = await f.Sdk.RunAsync("processes", new { id = f.Shared });
        var listed = r.GetProperty("listedBg");
        Assert.Equal(JsonValueKind.Object, listed.ValueKind);
        Assert.Equal("/bin/bash", E2bFixture.Str(listed, "cmd"));
        Assert.Equal("-c", listed.GetProperty("args")[1].GetString());
        Assert.True(r.GetProperty("secondSaw").GetBoolean(), "the second handle sees output produced after it connected");
        Assert.Equal("got one\ngot two\neof\n", E2bFixture.Str(r, "stdout"));
        Assert.Equal(0, r.GetProperty("exitCode").GetInt32());
        Assert.Contains("got two\n", E2bFixture.Str(r, "secondStdout"));
        Assert.EndsWith("eof\n", E2bFixture.Str(r, "secondStdout"));

        Assert.True(r.GetProperty("listedSleeper").GetBoolean());
        Assert.True(r.GetProperty("killed").GetBoolean());
        Assert.Equal("CommandExitError", E2bFixture.Str(r.GetProperty("killedEnd"), "error"));
        Assert.Contains("signal: killed", E2bFixture.Str(r.GetProperty("killedEnd"), "message"));
        Assert.False(r.GetProperty("listedAfterKill").GetBoolean());
        Assert.False(r.GetProperty("killAgain").GetBoolean(), "killing an exited process is not_found, which kill() reports as false");
        Assert.NotEqual("", E2bFixture.Str(r, "connectUnknown"));
        var pids = r.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()).ToList();
        Assert.All(pids, p => Assert.True(p > 1));
        Assert.NotEqual(pids[0], pids[1]);
    }

    [Fact]
    public async Task Pty_takes_input_and_resizes()
    {
        var r = await f.Sdk.RunAsync("pty", new { id = f.Shared });
        var tail = E2bFixture.Str(r, "tail");
        Assert.True(r.GetProperty("echoed").GetBoolean(), tail);
        Assert.True(r.GetProperty("size").GetBoolean(), "stty size shows the size the PTY was created with: " + tail);
        Assert.True(r.GetProperty("resized").GetBoolean(), "stty size shows the new size after resize: " + tail);
        Assert.True(r.GetProperty("listed").GetBoolean());
        Assert.True(r.GetProperty("killed").GetBoolean());
        Assert.Equal("CommandExitError", E2bFixture.Str(r, "end"));
    }

    [Fact]
    public async Task Files_list_with_depth_stat_mkdir_rename_and_remove()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var b = $"/tmp/fs-{tag}";
        var rel = $"made-{tag}";
        var r = await f.Sdk.RunAsync("fsOps", new { id = f.Shared, @base = b, rel });
        Assert.Equal(["user", "user", "user"], Strings(r.GetProperty("parentOwners"))); // as envd: parents a write creates are the user's
        Assert.Equal([$"{b}/a", $"{b}/link", $"{b}/top.txt"], Strings(r.GetProperty("depth1")));
        Assert.Equal([$"{b}/a", $"{b}/a/b", $"{b}/link", $"{b}/top.txt"], Strings(r.GetProperty("depth2")));

        var info = r.GetProperty("info");
        Assert.Equal("top.txt", E2bFixture.Str(info, "name"));
        Assert.Equal("file", E2bFixture.Str(info, "type"));
        Assert.Equal($"{b}/top.txt", E2bFixture.Str(info, "path"));
        Assert.Equal(5, info.GetProperty("size").GetInt64());
        Assert.Equal("-rw-r--r--", E2bFixture.Str(info, "permissions"));
        Assert.Equal(0b110_100_100, info.GetProperty("mode").GetInt32());
        Assert.Equal("user", E2bFixture.Str(info, "owner"));
        Assert.Equal("user", E2bFixture.Str(info, "group"));
        var modified = DateTimeOffset.Parse(E2bFixture.Str(info, "modified"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(modified, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal("dir", E2bFixture.Str(r, "dirType"));
        Assert.Equal("symlink", E2bFixture.Str(r.GetProperty("link"), "type"));
        Assert.Equal("top.txt", E2bFixture.Str(r.GetProperty("link"), "target"));

        Assert.True(r.GetProperty("exists").GetBoolean());
        Assert.False(r.GetProperty("missing").GetBoolean());
        Assert.Equal("FileNotFoundError", E2bFixture.Str(r, "infoMissing"));
        Assert.True(r.GetProperty("made").GetBoolean());
        Assert.False(r.GetProperty("madeAgain").GetBoolean());
        Assert.Equal(["user", "user"], Strings(r.GetProperty("madeOwners")));
        Assert.Equal($"{b}/moved.txt", E2bFixture.Str(r.GetProperty("renamed"), "path"));
        Assert.Equal("moved.txt", E2bFixture.Str(r.GetProperty("renamed"), "name"));
        Assert.Equal("file", E2bFixture.Str(r.GetProperty("renamed"), "type"));
        Assert.False(r.GetProperty("oldExists").GetBoolean());
        Assert.Equal("hello", E2bFixture.Str(r, "movedText"));
        Assert.False(r.GetProperty("removedExists").GetBoolean());
        Assert.Equal("FileNotFoundError", E2bFixture.Str(r, "removeMissing"));
    }

    [Fact]
    public async Task WatchDir_sees_changes_made_after_it_started()
    {
        var dir = $"/tmp/watch-{Guid.NewGuid().ToString("N")[..8]}";
        var r = await f.Sdk.RunAsync("watch", new { id = f.Shared, dir });
        Assert.True(r.GetProperty("sawNew").GetBoolean(), r.ToString());
        Assert.True(r.GetProperty("sawInner").GetBoolean(), "a recursive watch names nested files relative to the watched directory: " + r);
        Assert.True(r.GetProperty("sawRemove").GetBoolean(), r.ToString());
        Assert.False(r.GetProperty("flatInner").GetBoolean(), "a non-recursive watch does not see into subdirectories: " + r);
        Assert.Equal("FileNotFoundError", E2bFixture.Str(r, "missing"));
    }

    [Fact]
    public async Task Polling_watcher_returns_changes_and_is_gone_once_removed()
    {
        var dir = $"/tmp/poll-{Guid.NewGuid().ToString("N")[..8]}";
        var r = await f.Sdk.RunAsync("pollWatch", new { id = f.Shared, dir });
        Assert.NotEqual("", E2bFixture.Str(r, "watcherId"));
        Assert.Contains(r.GetProperty("events").EnumerateArray(),
            e => E2bFixture.Str(e, "name") == "polled.txt" && e.GetProperty("type").GetInt32() == 1); // EVENT_TYPE_CREATE
        Assert.Contains("not_found", E2bFixture.Str(r, "afterRemove"));
        Assert.Contains("not_found", E2bFixture.Str(r, "unknownDir"));
    }

    private static List<string?> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()).ToList();
}
