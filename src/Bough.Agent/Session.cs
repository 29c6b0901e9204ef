using System.Collections.Concurrent;
using Bough.Agent.Operations;
using Bough.Protocol;

namespace Bough.Agent;

/// <summary>
/// One host session (from a HELLO until the next HELLO, EOF or violation). Routes frames to streams
/// without ever blocking the channel's read loop, and, when replaced or closed, cancels every
/// operation (which kills exec process groups; processes of the table are only detached from) and
/// fences off their writes so nothing of this session reaches the host after the next HELLO_ACK.
/// </summary>
internal sealed class Session : IDisposable
{
    /// <summary>Guards against a host that opens streams without bound.</summary>
    public const int MaxActiveStreams = 1024;

    private readonly FrameWriter _writer;
    private readonly AgentState _state;
    private readonly CancellationTokenSource _cts = new();
    private readonly ConcurrentDictionary<uint, AgentStream> _streams = new();
    private readonly Func<bool> _canWrite;
    private volatile bool _closed;
    private uint _highestOpened;

    public Session(FrameWriter writer, AgentState state, string nonce)
    {
        _writer = writer;
        _state = state;
        Nonce = nonce;
        _canWrite = () => !_closed;
    }

    public string Nonce { get; }
    public AgentLog Log => _state.Log;

    public async ValueTask WriteAsync(FrameType type, ushort flags, uint stream, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        if (_closed) throw new OperationCanceledException("session closed");
        await _writer.WriteAsync(type, flags, stream, payload, ct, _canWrite).ConfigureAwait(false);
    }

    public async ValueTask WriteWindowAsync(uint stream, int increment, CancellationToken ct)
    {
        if (_closed) throw new OperationCanceledException("session closed");
        await _writer.WriteWindowAsync(stream, increment, ct, _canWrite).ConfigureAwait(false);
    }

    /// <summary>Dispatches one frame. Throws <see cref="ProtocolException"/> for frames the host must never send.</summary>
    public void Handle(Frame frame)
    {
        uint id = frame.StreamId;
        switch (frame.Type)
        {
            case FrameType.Open:
                if (id <= _highestOpened) throw new ProtocolException($"OPEN reuses stream id {id}");
                _highestOpened = id;
                Open(id, frame.Payload);
                break;
            case FrameType.Data:
                if (Lookup(id) is { } s)
                {
                    if (!s.ReceiveWindow.TryReceive(frame.Payload.Length))
                        throw new ProtocolException($"stream {id}: DATA exceeds the flow-control window");
                    s.OnData(frame.Payload);
                }
                break;
            case FrameType.Eof:
                Lookup(id)?.OnEof();
                break;
            case FrameType.Window:
                if (Lookup(id) is { } w && !w.SendCredit.Add(frame.WindowIncrement))
                    throw new ProtocolException($"stream {id}: invalid WINDOW increment {frame.WindowIncrement}");
                break;
            case FrameType.Cancel:
                Lookup(id)?.Cancel();
                break;
            default:
                throw new ProtocolException($"unexpected {frame.Type} frame from host");
        }
    }

    /// <summary>Frames for streams that already ended are dropped (the host may not know yet); never-opened ids are violations.</summary>
    private AgentStream? Lookup(uint id)
    {
        if (id > _highestOpened) throw new ProtocolException($"frame for stream {id} that was never opened");
        return _streams.TryGetValue(id, out var s) ? s : null;
    }

    private void Open(uint id, byte[] payload)
    {
        var stream = new AgentStream(this, id, _cts.Token);
        if (_streams.Count >= MaxActiveStreams)
        {
            _ = FinishAsync(stream, Task.FromResult(Error(ErrorCodes.BadRequest, $"more than {MaxActiveStreams} concurrent operations")));
            return;
        }
        _streams[id] = stream;
        OpenRequest? request = null;
        string? parseError = null;
        try { request = ProtocolJson.Decode(payload, ProtocolJson.Default.OpenRequest); }
        catch (ProtocolException e) { parseError = e.Message; }
        Task<EndMessage> run = request == null
            ? Task.FromResult(Error(ErrorCodes.BadRequest, parseError!))
            : Task.Run(() => OperationRouter.RunAsync(request, stream, _state));
        _ = FinishAsync(stream, run);
    }

    private async Task FinishAsync(AgentStream stream, Task<EndMessage> run)
    {
        EndMessage end;
        try
        {
            end = await run.ConfigureAwait(false);
        }
        catch (AgentError e)
        {
            end = Error(e.Code, e.Message);
        }
        catch (OperationCanceledException) when (stream.Token.IsCancellationRequested)
        {
            end = Error("cancelled", "operation cancelled");
        }
        catch (Exception e)
        {
            Log.Warn($"stream {stream.Id}: {e.GetType().Name}: {e.Message}");
            end = Error(ErrorCodes.IoError, e.Message);
        }
        try
        {
            if (!_closed) await stream.SendEndAsync(end).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.Debug($"stream {stream.Id}: END not sent: {e.Message}");
        }
        finally
        {
            _streams.TryRemove(stream.Id, out _);
            stream.Dispose();
        }
    }

    public static EndMessage Error(string code, string message) => new() { Error = new ErrorDto { Code = code, Message = message } };

    /// <summary>Cancels every operation and stops all further writes of this session.</summary>
    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        _cts.Cancel();
        foreach (var s in _streams.Values) s.Cancel();
    }
}
