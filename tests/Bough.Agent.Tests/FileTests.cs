using System.Security.Cryptography;
using Bough.AgentClient;

namespace Bough.Agent.Tests;

public sealed class FileTests(AgentFixture fixture) : IClassFixture<AgentFixture>, IDisposable
{
    private readonly TempDir _dir = new("agent-files");
    private string Root => _dir.Path;
    private AgentConnection C => fixture.Connection;

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(50 * 1024 * 1024)]
    public async Task Round_trip_by_sha256(int size)
    {
        var data = RandomNumberGenerator.GetBytes(size);
        string path = $"{Root}/deep/er/file-{size}.bin";
        await C.WriteFileAsync(path, new MemoryStream(data), 0x1C0 /* 0700 */, ExecHelpers.Timeout(120));

        await using var reader = await C.OpenReadAsync(path, ExecHelpers.Timeout(120));
        Assert.Equal(size, reader.Length);
        Assert.Equal(0x1C0, reader.Mode);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[100_000];
        int n;
        long total = 0;
        while ((n = await reader.Content.ReadAsync(buffer)) > 0) { sha.AppendData(buffer, 0, n); total += n; }
        Assert.Equal(size, total);
        Assert.Equal(SHA256.HashData(data), sha.GetHashAndReset());
        Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(path)), SHA256.HashData(data));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, ".*tmp")); // no temp file left behind
    }

    [Fact]
    public async Task Overwrite_keeps_existing_mode_when_none_given()
    {
        string path = $"{Root}/mode.txt";
        await C.WriteFileAsync(path, new MemoryStream("a"u8.ToArray()), 0x180, ExecHelpers.Timeout(30));
        await C.WriteFileAsync(path, new MemoryStream("bb"u8.ToArray()), null, ExecHelpers.Timeout(30));
        var st = await C.StatAsync(path, ExecHelpers.Timeout(30));
        Assert.Equal(0x180, st.Mode);
        Assert.Equal(2, st.Size);
    }

    [Fact]
    public async Task List_stat_mkdir_remove()
    {
        await C.MkdirAsync($"{Root}/a/b/c", ExecHelpers.Timeout(30));
        await C.MkdirAsync($"{Root}/a/b/c", ExecHelpers.Timeout(30)); // -p: existing is fine
        await C.WriteFileAsync($"{Root}/a/f.txt", new MemoryStream("12345"u8.ToArray()), null, ExecHelpers.Timeout(30));
        File.CreateSymbolicLink($"{Root}/a/link", $"{Root}/a/b");

        var entries = (await C.ListAsync($"{Root}/a", ExecHelpers.Timeout(30))).OrderBy(e => e.Name).ToList();
        Assert.Equal(["b", "f.txt", "link"], entries.Select(e => e.Name));
        Assert.Equal(AgentFileType.Dir, entries[0].Type);
        Assert.Equal(AgentFileType.File, entries[1].Type);
        Assert.Equal(5, entries[1].Size);
        Assert.Equal(0x1A4, entries[1].Mode);
        Assert.True(Math.Abs((entries[1].ModifiedAt - DateTimeOffset.UtcNow).TotalMinutes) < 5);
        Assert.Equal(AgentFileType.Symlink, entries[2].Type);

        var st = await C.StatAsync($"{Root}/a/b", ExecHelpers.Timeout(30));
        Assert.Equal(AgentFileType.Dir, st.Type);
        Assert.Equal("b", st.Name);

        var notEmpty = await Assert.ThrowsAsync<AgentException>(() => C.RemoveAsync($"{Root}/a", false, ExecHelpers.Timeout(30)));
        Assert.Equal("io_error", notEmpty.Code);
        await C.RemoveAsync($"{Root}/a/f.txt", false, ExecHelpers.Timeout(30));
        Assert.False(File.Exists($"{Root}/a/f.txt"));
        await C.RemoveAsync($"{Root}/a", true, ExecHelpers.Timeout(30));
        Assert.False(Directory.Exists($"{Root}/a"));
    }

    [Fact]
    public async Task Error_codes()
    {
        async Task<string> Code(Func<Task> f) => (await Assert.ThrowsAsync<AgentException>(f)).Code;
        var t = ExecHelpers.Timeout(30);
        Directory.CreateDirectory(Root);
        await File.WriteAllTextAsync($"{Root}/plain", "x");

        Assert.Equal("file_not_found", await Code(() => C.OpenReadAsync($"{Root}/missing", t)));
        Assert.Equal("file_not_found", await Code(() => C.StatAsync($"{Root}/missing", t)));
        Assert.Equal("file_not_found", await Code(() => C.ListAsync($"{Root}/missing", t)));
        Assert.Equal("file_not_found", await Code(() => C.RemoveAsync($"{Root}/missing", true, t)));
        Assert.Equal("invalid_path", await Code(() => C.OpenReadAsync("relative/path", t)));
        Assert.Equal("invalid_path", await Code(() => C.WriteFileAsync("x.txt", new MemoryStream([1]), null, t)));
        Assert.Equal("invalid_path", await Code(() => C.MkdirAsync("a/b", t)));
        Assert.Equal("is_a_directory", await Code(() => C.OpenReadAsync(Root, t)));
        Assert.Equal("is_a_directory", await Code(() => C.WriteFileAsync(Root, new MemoryStream([1]), null, t)));
        Assert.Equal("not_a_directory", await Code(() => C.ListAsync($"{Root}/plain", t)));
        Assert.Equal("not_a_directory", await Code(() => C.MkdirAsync($"{Root}/plain/sub", t)));
        Assert.Equal("already_exists", await Code(() => C.MkdirAsync($"{Root}/plain", t)));
        Assert.Equal("bad_request", await Code(() => C.RemoveAsync("/", true, t)));
    }

    [Fact]
    public async Task Early_dispose_of_a_reader_cancels_the_transfer()
    {
        await using (var reader = await C.OpenReadAsync("/dev/zero", ExecHelpers.Timeout(30)))
        {
            var buffer = new byte[1000];
            Assert.True(await reader.Content.ReadAsync(buffer) > 0);
        }
        Assert.Equal(0, (await C.Run("true")).Exit.ExitCode);
    }
}
