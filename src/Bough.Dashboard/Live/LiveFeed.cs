using Bough.Contracts;
using Bough.Engine.Events;

namespace Bough.Dashboard.Live;

/// <summary>
/// Keeps one page live: subscribes to the engine's event stream (the same one <c>GET /v1/events</c> serves)
/// and calls the page back after <c>ready</c>, after <c>resync</c>, and after the events it cares about, at
/// most once per <see cref="Coalesce"/> window, so a branch of a hundred children re-reads the lists a few
/// times instead of a hundred. The page re-reads from the engine on every call instead of patching its
/// lists from event payloads: simpler, and never out of step.
/// </summary>
public sealed class LiveFeed(IEngineEvents events) : IAsyncDisposable
{
    /// <summary>How long events are gathered before the page is called back.</summary>
    public static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(200);

    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <summary>
    /// Starts the subscription. <paramref name="onChange"/> gets the events of the window (empty after
    /// <c>ready</c>/<c>resync</c>: re-read everything); <paramref name="filter"/> picks the events that matter
    /// (all when null). Call once per page.
    /// </summary>
    public void Start(Func<IReadOnlyList<BoughEvent>, Task> onChange, Func<BoughEvent, bool>? filter = null)
    {
        ArgumentNullException.ThrowIfNull(onChange);
        if (_loop is not null)
            throw new InvalidOperationException("this feed is already started");
        _loop = RunAsync(onChange, filter ?? (_ => true), _stop.Token);
    }

    private async Task RunAsync(Func<IReadOnlyList<BoughEvent>, Task> onChange, Func<BoughEvent, bool> filter, CancellationToken ct)
    {
        var pending = new List<BoughEvent>();
        var reload = false;
        var due = DateTime.MaxValue;
        try
        {
            await using var e = events.SubscribeAsync(ct).GetAsyncEnumerator(ct);
            var next = e.MoveNextAsync().AsTask();
            while (true)
            {
                // Only a window in progress needs a timer (a finite one: it ends by itself).
                var eventFirst = due == DateTime.MaxValue
                    || await Task.WhenAny(next, Task.Delay(Max(due - DateTime.UtcNow, TimeSpan.Zero), ct)) == next;
                if (eventFirst)
                {
                    if (!await next)
                        return;
                    var ev = e.Current;
                    if (ev.Type is EventTypes.Ready or EventTypes.Resync)
                        reload = true;
                    else if (filter(ev))
                        pending.Add(ev);
                    else
                    {
                        next = e.MoveNextAsync().AsTask();
                        continue;
                    }
                    if (due == DateTime.MaxValue)
                        due = DateTime.UtcNow + Coalesce;
                    next = e.MoveNextAsync().AsTask();
                }
                else
                {
                    IReadOnlyList<BoughEvent> batch = reload ? [] : pending.ToArray();
                    pending.Clear();
                    reload = false;
                    due = DateTime.MaxValue;
                    await onChange(batch);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            try { await _loop; }
            catch (OperationCanceledException) { }
        }
        _stop.Dispose();
    }
}
