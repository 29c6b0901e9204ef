namespace Bough.Engine.Images;

/// <summary>
/// Limits one operation's progress publications to one per <c>interval</c>. A download reports every 100 ms and
/// every layer state change, and each report would otherwise become an event for every subscriber of
/// <c>GET /v1/events</c>; a burst is folded into one trailing publication at the end of the interval, so the last
/// state is never lost. <see cref="Close"/> stops it for good, before the operation's final event, so no progress
/// ever follows it.
/// </summary>
/// <param name="publish">Reads the current state and publishes it; called under this throttle's lock, so publications never overlap or reorder.</param>
internal sealed class ImageProgressThrottle(Action publish, TimeProvider time, TimeSpan interval) : IDisposable
{
    private readonly Lock _gate = new();
    private long? _lastPublished;
    private ITimer? _trailing;
    private bool _closed;

    /// <summary>Something changed: publish now if the interval has passed since the last publication, else once it has.</summary>
    public void Report()
    {
        lock (_gate)
        {
            // A trailing publication is already due: it will read the state as it is then, this change included.
            if (_closed || _trailing is not null) return;
            var now = time.GetTimestamp();
            var since = _lastPublished is { } last ? time.GetElapsedTime(last, now) : interval;
            if (since >= interval)
            {
                PublishLocked(now);
                return;
            }
            _trailing = time.CreateTimer(_ => Trailing(), null, interval - since, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>No publication after this returns (the operation is over; its final event comes next).</summary>
    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
            _trailing?.Dispose();
            _trailing = null;
        }
    }

    public void Dispose() => Close();

    private void Trailing()
    {
        lock (_gate)
        {
            if (_closed) return;
            _trailing?.Dispose();
            _trailing = null;
            PublishLocked(time.GetTimestamp());
        }
    }

    private void PublishLocked(long now)
    {
        _lastPublished = now;
        publish();
    }
}
