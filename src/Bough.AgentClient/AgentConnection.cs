using System.Collections.Concurrent;
using Bough.Protocol;
using Microsoft.Extensions.Logging;

namespace Bough.AgentClient;

/// <summary>
/// Host end of the agent channel. Everything the guest sends is untrusted: one read loop validates
/// every frame, and any violation closes the channel and fails every pending operation with
/// <c>agent_unavailable</c>. Memory per stream is bounded by the flow-control window, and no caller
/// waits on the guest without honouring its cancellation token.
/// </summary>
/// <remarks>
/// This file holds the state and its end (close, dispose); the partial files hold the handshake,
/// the read loop, the stream plumbing and the operations, one each.
/// </remarks>
public sealed partial class AgentConnection : IAsyncDisposable
{
    /// <summary>Bytes of junk tolerated before the handshake answer (stale output of an earlier session).</summary>
    public const long MaxHandshakeJunk = 4 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly ILogger _logger;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly CancellationTokenSource _lifetime;
    private readonly string _nonce;
    private readonly ConcurrentDictionary<uint, ClientStream> _streams = new();
    private readonly SemaphoreSlim _openLock = new(1, 1);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private uint _lastOpened;
    /// <summary>Null while open; set once by <see cref="Close"/>, so whoever sees the channel closed also sees why.</summary>
    private AgentException? _closeReason;
    private Task _readLoop = Task.CompletedTask;

    private AgentConnection(Stream stream, ILogger logger, FrameReader reader, FrameWriter writer, CancellationTokenSource lifetime, string nonce, AgentHello hello)
    {
        _stream = stream;
        _logger = logger;
        _reader = reader;
        _writer = writer;
        _lifetime = lifetime;
        _nonce = nonce;
        Hello = hello;
    }

    public AgentHello Hello { get; }

    /// <summary>Completes when the channel closes; faulted (with an <see cref="AgentException"/>) on a protocol violation.</summary>
    public Task Completion => _completion.Task;

    public bool IsConnected => Volatile.Read(ref _closeReason) == null;

    /// <summary>Bytes received from the guest and not yet consumed, over all streams (for diagnostics and tests).</summary>
    internal long BufferedBytes => _streams.Values.Sum(s => s.ReceiveWindow.Buffered);

    /// <summary>Closes the channel once: logs, fails every pending operation, completes <see cref="Completion"/>.</summary>
    private void Close(AgentException reason, bool violation)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) != null) return;
        if (violation) _logger.LogError("closing agent channel: {Reason}", reason.Message);
        else _logger.LogDebug("agent channel closed: {Reason}", reason.Message);
        try { _lifetime.Cancel(); } catch (ObjectDisposedException) { }
        try { _stream.Dispose(); } catch { /* already broken */ }
        foreach (var s in _streams.Values) s.Fail(reason);
        _streams.Clear();
        if (violation) _completion.TrySetException(reason);
        else _completion.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        Close(new AgentException(ErrorCodes.AgentUnavailable, "agent connection disposed"), violation: false);
        try { await _readLoop.ConfigureAwait(false); } catch { /* reported through Completion */ }
        _lifetime.Dispose();
    }

    private void ThrowIfClosed()
    {
        if (!IsConnected) throw ClosedReason;
    }

    /// <summary>Why the channel closed (a violation keeps its message); only meaningful once closed.</summary>
    private AgentException ClosedReason =>
        Volatile.Read(ref _closeReason) ?? new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed");
}
