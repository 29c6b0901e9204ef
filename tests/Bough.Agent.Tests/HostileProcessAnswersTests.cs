using Bough.AgentClient;
using Bough.Protocol;

namespace Bough.Agent.Tests;

/// <summary>
/// A fake guest answers the new operations (process table, watch, list with depth, move) with
/// impossible values: each must close the channel as a protocol violation (agent_unavailable)
/// instead of reaching the caller.
/// </summary>
public sealed class HostileProcessAnswersTests
{
    private static byte[] Reply(ReplyMessage r) => ProtocolJson.Encode(r, ProtocolJson.Default.ReplyMessage);
    private static byte[] End(EndMessage e) => ProtocolJson.Encode(e, ProtocolJson.Default.EndMessage);

    /// <summary>What the client does (opening stream 1) and what the fake guest then sends on it.</summary>
    private static readonly Dictionary<string, (Func<AgentConnection, Task> Call, (FrameType Type, ushort Flags, byte[] Payload)[] Frames)> Cases = new()
    {
        ["attach-negative-pid"] = (c => Drain(c.AttachProcessAsync(ProcessSelector.ByPid(5), null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Pid = -5 }))]),
        ["attach-data-before-pid"] = (c => Drain(c.AttachProcessAsync(ProcessSelector.ByPid(5), null, ExecHelpers.Timeout(10))),
            [(FrameType.Data, 1, "early"u8.ToArray())]),
        ["attach-second-pid"] = (c => Drain(c.AttachProcessAsync(ProcessSelector.ByPid(5), null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Pid = 5 })), (FrameType.Reply, 0, Reply(new ReplyMessage { Pid = 6 }))]),
        ["pty-output-on-stderr"] = (c => Drain(c.AttachProcessAsync(ProcessSelector.ByPid(5), null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Pid = 5, Pty = true })), (FrameType.Data, 2, "x"u8.ToArray())]),
        ["attach-absurd-exit"] = (c => Drain(c.AttachProcessAsync(ProcessSelector.ByPid(5), null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Pid = 5 })), (FrameType.End, 0, End(new EndMessage { Exit = new ExitDto { ExitCode = 300 } }))]),
        ["detached-start-with-reply"] = (c => c.StartProcessAsync(new ProcessSpec { Argv = ["x"] }, ExecHelpers.Timeout(10)),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Pid = 5 }))]),
        ["detached-start-without-pid"] = (c => c.StartProcessAsync(new ProcessSpec { Argv = ["x"] }, ExecHelpers.Timeout(10)),
            [(FrameType.End, 0, End(new EndMessage()))]),
        ["list-process-pid-zero"] = (c => c.ListProcessesAsync(true, ExecHelpers.Timeout(10)),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Processes = [new ProcessInfoDto { Pid = 0, Argv = ["x"] }] }))]),
        ["list-process-no-argv"] = (c => c.ListProcessesAsync(true, ExecHelpers.Timeout(10)),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Processes = [new ProcessInfoDto { Pid = 3, Argv = [] }] }))]),
        ["watch-event-climbing-out"] = (c => Drain(c.WatchAsync("/w", null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Watching = true })),
             (FrameType.Reply, 0, Reply(new ReplyMessage { Events = [new WatchEventDto { Name = "../etc/passwd", Type = "create" }] }))]),
        ["watch-event-absolute"] = (c => Drain(c.WatchAsync("/w", null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Watching = true })),
             (FrameType.Reply, 0, Reply(new ReplyMessage { Events = [new WatchEventDto { Name = "/etc/passwd", Type = "write" }] }))]),
        ["watch-event-unknown-type"] = (c => Drain(c.WatchAsync("/w", null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Watching = true })),
             (FrameType.Reply, 0, Reply(new ReplyMessage { Events = [new WatchEventDto { Name = "a", Type = "explode" }] }))]),
        ["watch-events-before-start"] = (c => Drain(c.WatchAsync("/w", null, ExecHelpers.Timeout(10))),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Events = [new WatchEventDto { Name = "a", Type = "create" }] }))]),
        ["list-entry-path-climbing-out"] = (c => c.ListAsync("/d", 3, ListLimits.Default, ExecHelpers.Timeout(10)),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Entries = [new FileEntryDto { Name = "x", Type = "file", Path = "../x" }] }))]),
        ["list-entry-path-not-its-name"] = (c => c.ListAsync("/d", 3, ListLimits.Default, ExecHelpers.Timeout(10)),
            [(FrameType.Reply, 0, Reply(new ReplyMessage { Entries = [new FileEntryDto { Name = "x", Type = "file", Path = "a/y" }] }))]),
        ["stat-owner-with-newline"] = (c => c.StatAsync("/f", ExecHelpers.Timeout(10)),
            [(FrameType.End, 0, End(new EndMessage { Entry = new FileEntryDto { Name = "f", Type = "file", Owner = "root\nx" } }))]),
        ["move-without-entry"] = (c => c.MoveAsync("/a", "/b", ExecHelpers.Timeout(10)),
            [(FrameType.End, 0, End(new EndMessage()))]),
    };

    public static TheoryData<string> Kinds => [.. Cases.Keys];

    private static async Task Drain<T>(IAsyncEnumerable<T> events)
    {
        await foreach (var _ in events) { }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Impossible_answers_are_protocol_violations(string kind)
    {
        var (call, frames) = Cases[kind];
        await using var guest = new FakeGuest(async (stream, w, _) =>
        {
            // Answer only once stream 1 is open, so the violation is the answer's, never "stream never opened".
            // (The client sends OPEN after the HELLO_ACK, so no earlier reader can have buffered it.)
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await new FrameReader(stream).ScanAsync(h => h.Type == FrameType.Open, ProtocolConstants.MaxPayload, long.MaxValue, wait.Token);
            foreach (var (type, flags, payload) in frames) await w.WriteAsync(type, flags, 1, payload, CancellationToken.None);
        });
        var log = new TestLogger();
        await using var c = await AgentConnection.ConnectAsync(guest.Path, log, TimeSpan.FromSeconds(10), CancellationToken.None);
        var e = await Assert.ThrowsAsync<AgentException>(() => call(c));
        Assert.Equal("agent_unavailable", e.Code);
        Assert.Contains("protocol error", e.Message);
        Assert.False(c.IsConnected);
    }
}
