using System.Net.Sockets;
using System.Text;
using Bough.AgentClient;
using Bough.Protocol;
using Microsoft.Extensions.Logging;

namespace Bough.Agent.Tests;

/// <summary>A fake guest: accepts one connection, answers the handshake correctly, then runs a misbehaviour script.</summary>
internal sealed class FakeGuest : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly Task _serve;
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"bough-fake-{Guid.NewGuid():n}.sock");

    public FakeGuest(Func<Stream, FrameWriter, string, Task> script, byte[]? preamble = null)
    {
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(1);
        _serve = Task.Run(async () =>
        {
            using var socket = await _listener.AcceptAsync();
            await using var stream = new NetworkStream(socket);
            var reader = new FrameReader(stream);
            var writer = new FrameWriter(stream, CancellationToken.None);
            var hello = (await reader.ReadFrameAsync(CancellationToken.None))!.Value;
            string nonce = ProtocolJson.Decode(hello.Payload, ProtocolJson.Default.HelloRequest).Nonce;
            if (preamble != null) await stream.WriteAsync(preamble);
            var ack = new HelloResponse { ProtocolVersion = 1, Nonce = nonce, AgentVersion = "fake", Pid = 1 };
            await writer.WriteAsync(FrameType.HelloAck, 0, 0, ProtocolJson.Encode(ack, ProtocolJson.Default.HelloResponse), CancellationToken.None);
            try { await script(stream, writer, nonce); } catch (IOException) { } catch (SocketException) { }
            // Linger until the client hangs up (it does so on a violation), at most 10 s.
            try
            {
                using var linger = new CancellationTokenSource(10_000);
                var sink = new byte[65536];
                while (await stream.ReadAsync(sink, linger.Token) > 0) { }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException) { }
        });
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        try { await _serve.WaitAsync(TimeSpan.FromSeconds(10)); } catch { }
        File.Delete(Path);
    }
}

public sealed class RobustnessTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private static byte[] Header(FrameType type, uint stream, int length, ushort flags = 0)
    {
        var h = new byte[16];
        new FrameHeader(type, flags, stream, length).Write(h);
        return h;
    }

    public static TheoryData<string> Misbehaviours => ["garbage", "oversized", "invalid-json", "unknown-stream", "unknown-type", "absurd-exit"];

    private static async Task Misbehave(string kind, Stream stream, FrameWriter writer)
    {
        await Task.Delay(200); // let the client open stream 1
        switch (kind)
        {
            case "garbage":
                await stream.WriteAsync(Encoding.ASCII.GetBytes("this is not a frame at all, just noise"));
                break;
            case "oversized":
                var h = Header(FrameType.Data, 1, 2 * 1024 * 1024, 1);
                await stream.WriteAsync(h);
                break;
            case "invalid-json":
                await writer.WriteAsync(FrameType.End, 0, 1, "{not json"u8.ToArray(), CancellationToken.None);
                break;
            case "unknown-stream":
                await writer.WriteAsync(FrameType.Data, 1, 77, new byte[10], CancellationToken.None);
                break;
            case "unknown-type":
                var bad = Header(FrameType.Data, 1, 0);
                bad[5] = 99;
                await stream.WriteAsync(bad);
                break;
            case "absurd-exit":
                var end = new EndMessage { Exit = new ExitDto { ExitCode = 100000, DurationMs = -5 } };
                await writer.WriteAsync(FrameType.End, 0, 1, ProtocolJson.Encode(end, ProtocolJson.Default.EndMessage), CancellationToken.None);
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Misbehaviours))]
    public async Task Hostile_guest_fails_the_connection_cleanly_while_others_keep_working(string kind)
    {
        await using var guest = new FakeGuest((s, w, _) => Misbehave(kind, s, w));
        var logger = new TestLogger();
        await using var bad = await AgentConnection.ConnectAsync(guest.Path, logger, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal("fake", bad.Hello.AgentVersion);

        var pending = kind is "invalid-json" or "absurd-exit" or "oversized"
            ? (Func<Task>)(async () => await bad.RunToCompletionAsync(new ExecSpec { Argv = ["x"] }, ExecHelpers.Timeout(10)))
            : () => bad.HealthAsync(ExecHelpers.Timeout(10));
        var e = await Assert.ThrowsAsync<AgentException>(pending);
        Assert.Equal("agent_unavailable", e.Code);
        Assert.Contains("protocol error", e.Message);

        var completion = await Assert.ThrowsAsync<AgentException>(() => bad.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("agent_unavailable", completion.Code);
        Assert.False(bad.IsConnected);
        Assert.Single(logger.Entries, x => x.Level == LogLevel.Error);
        // Later calls fail fast instead of hanging.
        Assert.Equal("agent_unavailable", (await Assert.ThrowsAsync<AgentException>(() => bad.HealthAsync(ExecHelpers.Timeout(10)))).Code);

        // A real agent connection is unaffected.
        Assert.Equal(0, (await fixture.Connection.Run("true")).Exit.ExitCode);
    }

    [Fact]
    public async Task Guest_sending_beyond_the_window_is_a_violation()
    {
        await using var guest = new FakeGuest(async (_, w, _) =>
        {
            await Task.Delay(200);
            var reply = new ReplyMessage { Size = 1 << 20, Mode = 0x1A4 };
            await w.WriteAsync(FrameType.Reply, 0, 1, ProtocolJson.Encode(reply, ProtocolJson.Default.ReplyMessage), CancellationToken.None);
            for (int i = 0; i < 5; i++) await w.WriteAsync(FrameType.Data, 0, 1, new byte[64 * 1024], CancellationToken.None);
        });
        var log = new TestLogger();
        await using var c = await AgentConnection.ConnectAsync(guest.Path, log, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var reader = await c.OpenReadAsync("/x", ExecHelpers.Timeout(10)); // never consumed: no credit is returned
        var e = await Assert.ThrowsAsync<AgentException>(() => c.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("window", e.Message);
        Assert.Equal("agent_unavailable", (await Assert.ThrowsAsync<AgentException>(() => reader.Content.ReadAsync(new byte[10]).AsTask())).Code);
    }

    [Fact]
    public async Task Handshake_skips_stale_junk_and_foreign_answers()
    {
        var stale = new HelloResponse { ProtocolVersion = 1, Nonce = "someone-else", AgentVersion = "old" };
        var junk = new MemoryStream();
        junk.Write(RandomBytes(100_000));
        junk.Write("BOUG"u8); // a false magic
        var w = new FrameWriter(junk, CancellationToken.None);
        await w.WriteAsync(FrameType.HelloAck, 0, 0, ProtocolJson.Encode(stale, ProtocolJson.Default.HelloResponse), CancellationToken.None);
        await using var guest = new FakeGuest((_, _, _) => Task.CompletedTask, junk.ToArray());
        await using var c = await AgentConnection.ConnectAsync(guest.Path, new TestLogger(), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal("fake", c.Hello.AgentVersion);
    }

    [Fact]
    public async Task Handshake_gives_up_after_too_much_junk()
    {
        await using var guest = new FakeGuest((_, _, _) => Task.CompletedTask, new byte[5 * 1024 * 1024]);
        var e = await Assert.ThrowsAsync<AgentException>(() =>
            AgentConnection.ConnectAsync(guest.Path, new TestLogger(), TimeSpan.FromSeconds(10), CancellationToken.None));
        Assert.Equal("agent_unavailable", e.Code);
    }

    [Fact]
    public async Task Connect_times_out_when_nothing_listens()
    {
        var e = await Assert.ThrowsAsync<AgentException>(() =>
            AgentConnection.ConnectAsync("/tmp/no-such-agent.sock", new TestLogger(), TimeSpan.FromMilliseconds(500), CancellationToken.None));
        Assert.Equal("agent_unavailable", e.Code);
    }

    [Fact]
    public async Task Silent_guest_does_not_hang_cancelled_callers()
    {
        await using var guest = new FakeGuest((_, _, _) => Task.Delay(10_000));
        await using var c = await AgentConnection.ConnectAsync(guest.Path, new TestLogger(), TimeSpan.FromSeconds(10), CancellationToken.None);
        using var cts = new CancellationTokenSource(300);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.HealthAsync(cts.Token));
    }

    private static byte[] RandomBytes(int n) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(n);

    // ------------------------------------------------ raw protocol against the real agent

    private static async Task<(Stream Stream, FrameReader Reader, FrameWriter Writer)> RawConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var stream = new NetworkStream(socket, ownsSocket: true);
        return (stream, new FrameReader(stream), new FrameWriter(stream, CancellationToken.None));
    }

    private static byte[] HelloPayload(string nonce) =>
        ProtocolJson.Encode(new HelloRequest { ProtocolVersion = 1, Nonce = nonce }, ProtocolJson.Default.HelloRequest);

    private static async Task<Frame> NextAsync(FrameReader reader, FrameType type)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var f = (await reader.ReadFrameAsync(cts.Token)) ?? throw new EndOfStreamException();
            if (f.Type == type) return f;
        }
    }

    [Fact]
    public async Task Agent_survives_junk_and_malformed_frames()
    {
        var (stream, reader, writer) = await RawConnectAsync(fixture.Agent.SocketPath);
        await using (stream)
        {
            await stream.WriteAsync(RandomBytes(50_000)); // stale junk before HELLO is skipped
            await writer.WriteAsync(FrameType.Hello, 0, 0, HelloPayload("n1"), CancellationToken.None);
            var ack = await NextAsync(reader, FrameType.HelloAck);
            Assert.Equal("n1", ProtocolJson.Decode(ack.Payload, ProtocolJson.Default.HelloResponse).Nonce);
            var bad = Header(FrameType.Open, 1, 0);
            bad[5] = 200; // unknown frame type
            await stream.WriteAsync(bad);
            var goAway = await NextAsync(reader, FrameType.GoAway);
            Assert.Contains("unknown frame type", ProtocolJson.Decode(goAway.Payload, ProtocolJson.Default.GoAwayMessage).Message);
        }
        Assert.False(fixture.Agent.HasExited);
        Assert.Equal(0, (await fixture.Connection.Run("true")).Exit.ExitCode);
        await using var fresh = await fixture.Agent.ConnectAsync();
        Assert.NotNull(await fresh.HealthAsync(ExecHelpers.Timeout(10)));
    }

    [Fact]
    public async Task New_hello_drops_the_old_session_and_kills_its_processes()
    {
        var (stream, reader, writer) = await RawConnectAsync(fixture.Agent.SocketPath);
        await using (stream)
        {
            await writer.WriteAsync(FrameType.Hello, 0, 0, HelloPayload("first"), CancellationToken.None);
            await NextAsync(reader, FrameType.HelloAck);
            var open = new OpenRequest { Op = Ops.Exec, Exec = new ExecRequest { Argv = ["sleep", "300"] } };
            await writer.WriteAsync(FrameType.Open, 0, 1, ProtocolJson.Encode(open, ProtocolJson.Default.OpenRequest), CancellationToken.None);
            var reply = await NextAsync(reader, FrameType.Reply);
            int pid = ProtocolJson.Decode(reply.Payload, ProtocolJson.Default.ReplyMessage).Pid!.Value;
            Assert.True(HostProcess.IsAlive(pid));

            // A repeated HELLO with the same nonce is only re-acknowledged.
            await writer.WriteAsync(FrameType.Hello, 0, 0, HelloPayload("first"), CancellationToken.None);
            await NextAsync(reader, FrameType.HelloAck);
            await Task.Delay(200);
            Assert.True(HostProcess.IsAlive(pid));

            await writer.WriteAsync(FrameType.Hello, 0, 0, HelloPayload("second"), CancellationToken.None);
            var ack = await NextAsync(reader, FrameType.HelloAck);
            Assert.Equal("second", ProtocolJson.Decode(ack.Payload, ProtocolJson.Default.HelloResponse).Nonce);
            Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(5)), "old session's process survived a new HELLO");

            // Stream ids restart with the new session, and nothing of the old session arrives after the new ACK.
            var health = new OpenRequest { Op = Ops.Health };
            await writer.WriteAsync(FrameType.Open, 0, 1, ProtocolJson.Encode(health, ProtocolJson.Default.OpenRequest), CancellationToken.None);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var next = (await reader.ReadFrameAsync(cts.Token))!.Value;
            Assert.Equal(FrameType.End, next.Type);
            Assert.NotNull(ProtocolJson.Decode(next.Payload, ProtocolJson.Default.EndMessage).Health);
        }
    }
}
