using Bough.Agent.Operations;
using Bough.AgentClient;
using Bough.Protocol;

namespace Bough.Agent.Tests;

/// <summary>
/// Guest paths are normalised by the agent before any check, and listings are capped on both
/// sides (the agent's --max-list-entries, the host's <see cref="ListLimits"/>).
/// </summary>
public sealed class PathAndListingTests(AgentFixture fixture) : IClassFixture<AgentFixture>, IDisposable
{
    private readonly TempDir _dir = new("agent-paths");
    private string Root => _dir.Path;
    private AgentConnection C => fixture.Connection;

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("/", "/")]
    [InlineData("/.", "/")]
    [InlineData("/./", "/")]
    [InlineData("//", "/")]
    [InlineData("/a/..", "/")]
    [InlineData("/a/../", "/")]
    [InlineData("/../../..", "/")]
    [InlineData("//a//b/./c/../d", "/a/b/d")]
    [InlineData("/a/b/", "/a/b/")]
    [InlineData("/a/b/.", "/a/b/")]
    [InlineData("/a/b/c/..", "/a/b/")]
    [InlineData("/.hidden/..dots/...", "/.hidden/..dots/...")]
    public void Normalize_resolves_the_text_and_every_spelling_of_the_root_is_the_root(string path, string expected)
    {
        Assert.Equal(expected, GuestPath.Normalize(path));
        Assert.Equal(expected == "/", GuestPath.IsRoot(GuestPath.Normalize(path)));
    }

    // Lexical '..': "missing/.." names its parent even though "missing" does not exist, which the
    // kernel would refuse (ENOENT). These pass only if the agent normalises before it acts.
    [Fact]
    public async Task The_agent_acts_on_normalised_paths()
    {
        await C.WriteFileAsync($"{Root}//w/./f.txt", new MemoryStream("x"u8.ToArray()), null, ExecHelpers.Timeout(30));
        Assert.True(File.Exists($"{Root}/w/f.txt"));

        var st = await C.StatAsync($"{Root}/w/missing/../f.txt", ExecHelpers.Timeout(30));
        Assert.Equal(1, st.Size);
        Assert.Equal(["f.txt"], (await C.ListAsync($"{Root}/w/missing/..", ExecHelpers.Timeout(30))).Select(e => e.Name));
        await using (var reader = await C.OpenReadAsync($"{Root}/w/missing/../f.txt", ExecHelpers.Timeout(30)))
            Assert.Equal(1, reader.Length);

        await C.RemoveAsync($"{Root}/w/missing/../f.txt", recursive: false, ExecHelpers.Timeout(30));
        Assert.False(File.Exists($"{Root}/w/f.txt"));
    }

    [Fact]
    public async Task The_host_cap_on_entries_and_name_bytes_ends_a_listing_with_too_large()
    {
        for (int i = 0; i < 12; i++) await File.WriteAllTextAsync(Path.Combine(Root, $"{new string('n', 60)}{i:D2}"), "");

        Assert.Equal(12, (await C.ListAsync(Root, new ListLimits(12, 1 << 20), ExecHelpers.Timeout(30))).Count);
        var entries = await Assert.ThrowsAsync<AgentException>(() => C.ListAsync(Root, new ListLimits(11, 1 << 20), ExecHelpers.Timeout(30)));
        Assert.Equal(AgentException.TooLarge, entries.Code);
        Assert.Contains("more than 11 entries", entries.Message);
        // 12 × (62 chars × 2 + 64) = 2256 bytes of names.
        var bytes = await Assert.ThrowsAsync<AgentException>(() => C.ListAsync(Root, new ListLimits(1000, 2000), ExecHelpers.Timeout(30)));
        Assert.Equal(AgentException.TooLarge, bytes.Code);
        Assert.True(C.IsConnected); // a refusal, not a broken channel
        Assert.Equal(0, (await C.Run("true")).Exit.ExitCode);
    }

    [Fact]
    public async Task The_agent_stops_a_listing_at_its_own_cap()
    {
        await using var agent = await AgentProcess.StartAsync(extraArgs: ["--max-list-entries", "5"]);
        await using var c = await agent.ConnectAsync();
        for (int i = 0; i < 5; i++) await File.WriteAllTextAsync(Path.Combine(Root, $"f{i}"), "");
        Assert.Equal(5, (await c.ListAsync(Root, ExecHelpers.Timeout(30))).Count);

        await File.WriteAllTextAsync(Path.Combine(Root, "f5"), "");
        var e = await Assert.ThrowsAsync<AgentException>(() => c.ListAsync(Root, ExecHelpers.Timeout(30)));

        Assert.Equal(AgentException.TooLarge, e.Code);
        Assert.Contains("more than 5 entries", e.Message); // the agent's message: the host's default cap is far higher
    }

    [Fact]
    public async Task A_guest_that_never_ends_a_listing_is_cut_off_at_the_host_cap()
    {
        await using var guest = new FakeGuest(async (_, w, _) =>
        {
            await Task.Delay(200); // let the client open stream 1
            for (int batch = 0; batch < 3; batch++)
            {
                var reply = new ReplyMessage
                {
                    Entries = Enumerable.Range(0, 8).Select(i => new FileEntryDto { Name = $"e{batch}-{i}", Type = "file", Mode = 0x1A4 }).ToList(),
                };
                await w.WriteAsync(FrameType.Reply, 0, 1, ProtocolJson.Encode(reply, ProtocolJson.Default.ReplyMessage), CancellationToken.None);
            }
            await Task.Delay(10_000); // and never an END
        });
        await using var c = await AgentConnection.ConnectAsync(guest.Path, new TestLogger(), TimeSpan.FromSeconds(10), CancellationToken.None);

        var e = await Assert.ThrowsAsync<AgentException>(() => c.ListAsync("/big", new ListLimits(10, 1 << 20), ExecHelpers.Timeout(10)));

        Assert.Equal(AgentException.TooLarge, e.Code);
    }
}
