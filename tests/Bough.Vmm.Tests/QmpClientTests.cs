using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Vmm.Tests;

/// <summary>QMP protocol handling against a scripted fake server (no QEMU needed).</summary>
public sealed class QmpClientTests : IDisposable
{
    private readonly TempDir _dir = new("qmp");
    private string SocketPath => Path.Combine(_dir.Path, "qmp.sock");

    public void Dispose() => _dir.Dispose();

    /// <summary>Accepts one client, greets, then answers each command via <paramref name="reply"/>.</summary>
    private Task RunServerAsync(Func<JsonElement, StreamWriter, Task<bool>> reply, bool greet = true)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        listener.Listen(1);
        return Task.Run(async () =>
        {
            using var l = listener;
            using var conn = await listener.AcceptAsync();
            await using var stream = new NetworkStream(conn, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
            if (!greet)
            {
                await Task.Delay(Timeout.Infinite).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
                return;
            }
            await writer.WriteLineAsync("""{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}""");
            while (await reader.ReadLineAsync() is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                if (!await reply(doc.RootElement.Clone(), writer)) break;
            }
        });
    }

    private static string Id(JsonElement cmd) => cmd.GetProperty("id").GetRawText();

    [Fact]
    public async Task Execute_MatchesRepliesById_DeliversInterleavedEvents_MapsErrors()
    {
        var server = RunServerAsync(async (cmd, w) =>
        {
            string name = cmd.GetProperty("execute").GetString()!;
            string id = Id(cmd);
            switch (name)
            {
                case "qmp_capabilities":
                    await w.WriteLineAsync($$"""{"return": {}, "id": {{id}}}""");
                    break;
                case "stop":
                    // Event before the reply, as QEMU does.
                    await w.WriteLineAsync("""{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}""");
                    await w.WriteLineAsync($$"""{"return": {}, "id": {{id}}}""");
                    break;
                case "echo":
                    await w.WriteLineAsync($$"""{"return": {"got": {{cmd.GetProperty("arguments").GetRawText()}}}, "id": {{id}}}""");
                    break;
                case "quit":
                    return false; // close without answering
                default:
                    await w.WriteLineAsync($$"""{"error": {"class": "CommandNotFound", "desc": "The command {{name}} has not been found"}, "id": {{id}}}""");
                    break;
            }
            return true;
        });

        await using var qmp = await QmpClient.ConnectAsync(SocketPath, NullLogger.Instance, CancellationToken.None);
        Assert.Equal(7, qmp.Greeting.GetProperty("version").GetProperty("qemu").GetProperty("major").GetInt32());
        using var sub = qmp.SubscribeEvents();

        await qmp.ExecuteAsync("stop", null, CancellationToken.None);
        var ev = await sub.WaitForAsync("STOP", CancellationToken.None);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddTicks(50), ev.Timestamp);
        Assert.True(qmp.Events.TryRead(out var fromDefault));
        Assert.Equal("STOP", fromDefault.Name);

        var echoed = await qmp.ExecuteAsync("echo", new { filename = "a,b", live = false }, CancellationToken.None);
        Assert.Equal("a,b", echoed.GetProperty("got").GetProperty("filename").GetString());
        Assert.False(echoed.GetProperty("got").GetProperty("live").GetBoolean());

        var error = await Assert.ThrowsAsync<QmpException>(() => qmp.ExecuteAsync("bogus", null, CancellationToken.None));
        Assert.Equal("CommandNotFound", error.ErrorClass);
        Assert.Contains("bogus", error.Description);

        await Assert.ThrowsAsync<QmpDisconnectedException>(() => qmp.ExecuteAsync("quit", null, CancellationToken.None));
        await qmp.Disconnected.WaitAsync(TimeSpan.FromSeconds(5));
        await server;
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => qmp.ExecuteAsync("stop", null, CancellationToken.None));
        Assert.True(qmp.Events.Completion.IsCompleted || !qmp.Events.TryRead(out _));
    }

    [Fact]
    public async Task Connect_TimesOut_WhenServerNeverGreets()
    {
        var server = RunServerAsync((_, _) => Task.FromResult(true), greet: false);
        await Assert.ThrowsAsync<TimeoutException>(() =>
            QmpClient.ConnectAsync(SocketPath, NullLogger.Instance, TimeSpan.FromMilliseconds(300), CancellationToken.None));
        await server;
    }
}
