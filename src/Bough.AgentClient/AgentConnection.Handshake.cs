using System.Net.Sockets;
using System.Security.Cryptography;
using Bough.Protocol;
using Microsoft.Extensions.Logging;

namespace Bough.AgentClient;

/// <summary>Connecting: the socket retry loop and the HELLO/HELLO_ACK handshake with its nonce.</summary>
public sealed partial class AgentConnection
{
    private static readonly TimeSpan HelloInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Connects to QEMU's unix socket, retrying until it exists and accepts and the agent has answered
    /// the handshake, or <paramref name="timeout"/> passes (then throws agent_unavailable).
    /// </summary>
    public static async Task<AgentConnection> ConnectAsync(string unixSocketPath, ILogger logger, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "timed out";
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new AgentException(ErrorCodes.AgentUnavailable, $"agent at {unixSocketPath} unavailable after {timeout.TotalSeconds:0.#} s: {last}");
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e.Message;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100, Math.Max(1, remaining.TotalMilliseconds))), ct).ConfigureAwait(false);
                continue;
            }
            var stream = new NetworkStream(socket, ownsSocket: true);
            try
            {
                return await ConnectAsync(stream, logger, remaining, ct).ConfigureAwait(false);
            }
            catch (AgentException e) when (e.Message.Contains("closed during handshake") && DateTime.UtcNow < deadline)
            {
                // QEMU accepted but the chardev went away (VM restarting); try again.
                last = e.Message;
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs the handshake on an already connected stream (which the connection then owns): sends
    /// HELLO with a fresh nonce (resent every 500 ms) until the matching HELLO_ACK arrives, skipping up to
    /// <see cref="MaxHandshakeJunk"/> bytes of anything else.
    /// </summary>
    public static async Task<AgentConnection> ConnectAsync(Stream stream, ILogger logger, TimeSpan timeout, CancellationToken ct)
    {
        var lifetime = new CancellationTokenSource();
        var reader = new FrameReader(stream);
        var writer = new FrameWriter(stream, lifetime.Token);
        string nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        var hello = ProtocolJson.Encode(new HelloRequest { ProtocolVersion = ProtocolConstants.Version, Nonce = nonce, Client = "bough-agentclient" },
            ProtocolJson.Default.HelloRequest);
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.Token);
        handshake.CancelAfter(timeout);
        using var stopResend = CancellationTokenSource.CreateLinkedTokenSource(handshake.Token);
        var resend = ResendHelloAsync(writer, hello, stopResend.Token);
        try
        {
            while (true)
            {
                var frame = await reader.ScanAsync(h => h.Type == FrameType.HelloAck, ProtocolConstants.MaxHelloPayload, MaxHandshakeJunk, handshake.Token).ConfigureAwait(false)
                    ?? throw new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed during handshake");
                HelloResponse? ack = null;
                try { ack = ProtocolJson.Decode(frame.Payload, ProtocolJson.Default.HelloResponse); }
                catch (ProtocolException) { }
                if (ack == null || ack.Nonce != nonce)
                {
                    reader.CountDiscarded(ProtocolConstants.HeaderSize + frame.Payload.Length);
                    continue;
                }
                if (ack.ProtocolVersion != ProtocolConstants.Version)
                    throw new AgentException(ErrorCodes.AgentUnavailable, $"agent speaks protocol {ack.ProtocolVersion}, expected {ProtocolConstants.Version}");
                stopResend.Cancel();
                await resend.ConfigureAwait(false);
                var info = new AgentHello(ack.ProtocolVersion, Truncate(ack.AgentVersion, 64), Truncate(ack.BootId, 64), Truncate(ack.Hostname, 256), ack.Pid)
                {
                    // Untrusted like everything else: at most 64 short names are kept, the rest is ignored.
                    Features = (ack.Features ?? []).Where(f => f is { Length: > 0 and <= 64 }).Take(64).ToHashSet(StringComparer.Ordinal),
                };
                var connection = new AgentConnection(stream, logger, reader, writer, lifetime, nonce, info);
                connection._readLoop = Task.Run(connection.ReadLoopAsync, CancellationToken.None);
                logger.LogDebug("agent {Version} connected (boot {BootId})", info.AgentVersion, info.BootId);
                return connection;
            }
        }
        catch (Exception e)
        {
            stopResend.Cancel();
            lifetime.Cancel();
            try { await resend.ConfigureAwait(false); } catch { /* observed */ }
            await stream.DisposeAsync().ConfigureAwait(false);
            lifetime.Dispose();
            if (e is AgentException) throw;
            if (e is OperationCanceledException && ct.IsCancellationRequested) throw;
            string why = e switch
            {
                OperationCanceledException => $"no handshake answer within {timeout.TotalSeconds:0.#} s",
                ProtocolException p => $"protocol error: {p.Message}",
                _ => e.Message,
            };
            throw new AgentException(ErrorCodes.AgentUnavailable, $"agent handshake failed: {why}");
        }
    }

    private static async Task ResendHelloAsync(FrameWriter writer, byte[] hello, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await writer.WriteAsync(FrameType.Hello, 0, 0, hello, ct).ConfigureAwait(false);
                await Task.Delay(HelloInterval, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception) { /* the reader side reports the failure */ }
    }

    private static string Truncate(string? s, int max) => s == null ? "" : s.Length <= max ? s : s[..max];
}
