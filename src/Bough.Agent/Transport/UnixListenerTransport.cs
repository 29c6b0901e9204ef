using System.Net.Sockets;

namespace Bough.Agent.Transport;

/// <summary>
/// Test mode (--listen-unix PATH): every accepted connection is an independent channel, so tests
/// can run the real agent on the host and talk to it with the real client.
/// </summary>
internal sealed class UnixListenerTransport(string socketPath, AgentState state)
{
    public async Task RunAsync(CancellationToken ct)
    {
        if (File.Exists(socketPath)) File.Delete(socketPath);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen(64);
        state.Log.Info($"listening on {socketPath}");
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
            _ = ServeAsync(client, ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: true);
            await new AgentChannel(stream, state).RunAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            state.Log.Warn($"connection failed: {e.Message}");
        }
    }
}
