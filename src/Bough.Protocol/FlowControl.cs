namespace Bough.Protocol;

/// <summary>
/// Send-side credit for one stream and direction. A sender takes credit before each DATA/REPLY
/// frame and waits when it has none, which is what stops a fast producer from outrunning a slow
/// consumer: memory on the receiving side stays bounded by the window.
/// </summary>
public sealed class CreditGate(long initial, Action? onCreditAdded = null)
{
    private readonly object _lock = new();
    private long _credit = initial;
    private bool _closed;
    private TaskCompletionSource? _waiter;

    public long Available { get { lock (_lock) return _credit; } }

    /// <summary>Adds credit granted by the peer; false when the total would exceed <see cref="ProtocolConstants.MaxCredit"/>.</summary>
    public bool Add(uint increment)
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            if (increment == 0 || _credit + increment > ProtocolConstants.MaxCredit) return false;
            _credit += increment;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
        onCreditAdded?.Invoke();
        return true;
    }

    /// <summary>Takes up to <paramref name="max"/> bytes of credit without waiting; 0 when there is none.</summary>
    public int TryAcquire(int max)
    {
        lock (_lock)
        {
            if (_closed || _credit <= 0) return 0;
            int take = (int)Math.Min(max, _credit);
            _credit -= take;
            return take;
        }
    }

    /// <summary>Waits for credit and takes between 1 and <paramref name="max"/> bytes of it.</summary>
    public async ValueTask<int> AcquireAsync(int max, CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_closed) throw new OperationCanceledException("stream closed");
                if (_credit > 0)
                {
                    int take = (int)Math.Min(max, _credit);
                    _credit -= take;
                    return take;
                }
                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until at least <paramref name="amount"/> bytes can be taken at once (for REPLY frames, which are not split).</summary>
    public async ValueTask AcquireExactAsync(int amount, CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_closed) throw new OperationCanceledException("stream closed");
                if (_credit >= amount) { _credit -= amount; return; }
                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Gives back credit that was taken but not used.</summary>
    public void Return(int amount)
    {
        if (amount <= 0) return;
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _credit += amount;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
    }

    /// <summary>Wakes and fails all waiters; used when the stream ends.</summary>
    public void Close()
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _closed = true;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
        onCreditAdded?.Invoke();
    }
}

/// <summary>
/// Receive-side accounting for one stream and direction: rejects frames beyond the credit the
/// peer was given (a violation), and decides when consumed bytes are worth a WINDOW frame.
/// </summary>
public sealed class ReceiveWindow
{
    private readonly object _lock = new();
    private long _remaining = ProtocolConstants.InitialWindow;
    private long _consumedNotGranted;

    /// <summary>Bytes received and not yet consumed (what this stream currently buffers).</summary>
    public long Buffered { get { lock (_lock) return ProtocolConstants.InitialWindow - _remaining - _consumedNotGranted; } }

    /// <summary>Accounts for a received frame; false when the peer exceeded its credit.</summary>
    public bool TryReceive(int bytes)
    {
        lock (_lock)
        {
            if (bytes > _remaining) return false;
            _remaining -= bytes;
            return true;
        }
    }

    /// <summary>
    /// Marks bytes as consumed; returns the increment to grant now (0 to wait for more).
    /// <paramref name="flush"/> grants everything consumed so far (used when the local queue ran empty).
    /// </summary>
    public int Consume(int bytes, bool flush = false)
    {
        lock (_lock)
        {
            _consumedNotGranted += bytes;
            if (_consumedNotGranted == 0 || (!flush && _consumedNotGranted < ProtocolConstants.WindowGrantThreshold)) return 0;
            int grant = (int)_consumedNotGranted;
            _consumedNotGranted = 0;
            _remaining += grant;
            return grant;
        }
    }
}
