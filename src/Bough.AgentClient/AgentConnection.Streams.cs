using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>Stream plumbing the operations build on: open in id order, abandon, pump uploads, END-only operations.</summary>
public sealed partial class AgentConnection
{
    /// <summary>
    /// Allocates the next stream id and sends OPEN under one lock, so ids reach the agent in
    /// increasing order (the agent rejects reused or decreasing ids).
    /// </summary>
    private async Task<ClientStream> OpenAsync(OpenRequest request, CancellationToken ct)
    {
        ThrowIfClosed();
        var payload = ProtocolJson.Encode(request, ProtocolJson.Default.OpenRequest);
        await _openLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            uint id = _lastOpened + 1;
            var s = new ClientStream(id, request.Op) { Detached = request.Op == Ops.ProcStart && request.Process?.Detach == true };
            _streams[id] = s;
            Volatile.Write(ref _lastOpened, id);
            try
            {
                await _writer.WriteAsync(FrameType.Open, 0, id, payload, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && IsConnected)
            {
                // Never sent (the lock wait was cancelled): forget it. The id stays burnt, which is fine.
                _streams.TryRemove(id, out _);
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ThrowIfClosed();
                throw new AgentException(ErrorCodes.AgentUnavailable, $"agent channel write failed: {e.Message}");
            }
            if (!IsConnected) s.Fail(ClosedReason);
            return s;
        }
        finally
        {
            _openLock.Release();
        }
    }

    /// <summary>The caller no longer wants the stream: tell the agent (an exec's process group is killed) and discard what still arrives.</summary>
    internal void Abandon(ClientStream s)
    {
        if (s.Ended || s.Abandoned) return;
        s.Abandoned = true;
        s.SendCredit.Close();
        while (s.TryNext(out var item))
            if (item.Type is FrameType.Data or FrameType.Reply) Consumed(s, item.Data.Length);
        if (IsConnected) Observe(_writer.WriteAsync(FrameType.Cancel, 0, s.Id, ReadOnlyMemory<byte>.Empty, _lifetime.Token));
    }

    /// <summary>Streams <paramref name="source"/> as DATA under the agent's credit, then EOF.</summary>
    private async Task PumpAsync(ClientStream s, Stream source, CancellationToken ct)
    {
        var buffer = new byte[ProtocolConstants.MaxDataChunk];
        while (true)
        {
            int n = await source.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (n == 0) break;
            for (int offset = 0; offset < n;)
            {
                int credit = await s.SendCredit.AcquireAsync(n - offset, ct).ConfigureAwait(false);
                await _writer.WriteAsync(FrameType.Data, (ushort)DataChannel.Content, s.Id, buffer.AsMemory(offset, credit), ct).ConfigureAwait(false);
                offset += credit;
            }
        }
        await _writer.WriteAsync(FrameType.Eof, 0, s.Id, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
    }

    private static EndMessage ThrowIfError(EndMessage end)
    {
        if (end.Error is { } e) throw new AgentException(e.Code, e.Message);
        return end;
    }

    /// <summary>
    /// Runs an operation that takes <paramref name="content"/> as DATA (write, proc.input) and answers
    /// END. END can arrive before the upload finishes (an early error); it stops the upload.
    /// </summary>
    private async Task<EndMessage> RunWithUploadAsync(OpenRequest request, Stream content, CancellationToken ct)
    {
        var s = await OpenAsync(request, ct).ConfigureAwait(false);
        using var pumpCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pump = PumpAsync(s, content, pumpCts.Token);
        try
        {
            var endTask = s.NextAsync(ct).AsTask();
            var first = await Task.WhenAny(pump, endTask).ConfigureAwait(false);
            if (first == pump && pump.IsFaulted && pump.Exception!.InnerException is not OperationCanceledException and not AgentException)
                throw new AgentException(ErrorCodes.IoError, $"reading content failed: {pump.Exception.InnerException!.Message}");
            return ThrowIfError((await endTask.ConfigureAwait(false)).End!);
        }
        finally
        {
            Abandon(s);
            pumpCts.Cancel();
            try { await pump.ConfigureAwait(false); } catch { /* observed */ }
        }
    }

    /// <summary>Runs an operation whose only answer is END.</summary>
    private async Task<EndMessage> RunAsync(OpenRequest request, CancellationToken ct)
    {
        var s = await OpenAsync(request, ct).ConfigureAwait(false);
        try
        {
            var item = await s.NextAsync(ct).ConfigureAwait(false);
            return ThrowIfError(item.End!);
        }
        finally
        {
            Abandon(s);
        }
    }
}
