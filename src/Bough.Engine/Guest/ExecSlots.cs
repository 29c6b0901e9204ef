using Bough.Contracts;

namespace Bough.Engine.Guest;

/// <summary>
/// Limits buffered execs running at once, per sandbox and daemon-wide: each holds up to its
/// output cap in memory, so their number is what bounds the daemon's memory. A request waits
/// <see cref="EngineOptions.ExecSlotWait"/> for a slot, then gets 429 too_many_execs with
/// Retry-After. Streamed execs hold only a flow-control window and take no slot.
/// </summary>
/// <remarks>The sandbox's slot is taken before the daemon's, so a sandbox at its own limit never holds a daemon slot while it waits.</remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim needs disposing only once its AvailableWaitHandle is used, which Bough never does; this lives as long as the daemon.")]
internal sealed class ExecSlots(EngineOptions options)
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _daemon = new(options.MaxBufferedExecs, options.MaxBufferedExecs);
    private readonly Dictionary<string, Entry> _sandboxes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <exception cref="BoughException">too_many_execs (429) when no slot frees up in time.</exception>
    public async Task<IDisposable> AcquireAsync(string sandboxId, CancellationToken ct)
    {
        Entry entry;
        lock (_gate)
        {
            if (!_sandboxes.TryGetValue(sandboxId, out entry!)) _sandboxes[sandboxId] = entry = new Entry(options.MaxBufferedExecsPerSandbox);
            entry.Refs++;
        }
        var sandboxHeld = false;
        try
        {
            if (!await entry.Slots.WaitAsync(options.ExecSlotWait, ct))
                throw TooMany($"sandbox {sandboxId} already runs {options.MaxBufferedExecsPerSandbox} buffered execs");
            sandboxHeld = true;
            if (!await _daemon.WaitAsync(options.ExecSlotWait, ct))
                throw TooMany($"the daemon already runs {options.MaxBufferedExecs} buffered execs");
            return new Slot(this, sandboxId, entry);
        }
        catch
        {
            if (sandboxHeld) entry.Slots.Release();
            Unref(sandboxId, entry);
            throw;
        }
    }

    private static BoughException TooMany(string what) =>
        new(ErrorCodes.TooManyExecs, $"{what}; try again shortly, or stream the output (Accept: application/x-ndjson), which is not limited")
        {
            RetryAfter = RetryAfter,
        };

    private void Release(string sandboxId, Entry entry)
    {
        _daemon.Release();
        entry.Slots.Release();
        Unref(sandboxId, entry);
    }

    private void Unref(string sandboxId, Entry entry)
    {
        lock (_gate)
        {
            if (--entry.Refs == 0) _sandboxes.Remove(sandboxId);
        }
    }

    private sealed class Entry(int slots)
    {
        public SemaphoreSlim Slots { get; } = new(slots, slots);
        public int Refs;
    }

    private sealed class Slot(ExecSlots owner, string sandboxId, Entry entry) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) owner.Release(sandboxId, entry);
        }
    }
}
