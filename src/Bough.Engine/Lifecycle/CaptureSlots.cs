using Bough.Contracts;

namespace Bough.Engine.Lifecycle;

/// <summary>
/// The daemon-wide cap on concurrent captures (they are I/O heavy and stop VMs). Taken after
/// a sandbox's lifecycle lease, never before (<see cref="LockOrder.CaptureSlot"/>).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim needs disposing only once its AvailableWaitHandle is used, which Bough never does; this lives as long as the daemon (or its sandbox).")]
internal sealed class CaptureSlots(EngineOptions options)
{
    private readonly SemaphoreSlim _slots = new(options.MaxConcurrentCaptures, options.MaxConcurrentCaptures);

    /// <exception cref="BoughException">too_many_captures (429) when no slot frees up within <see cref="EngineOptions.CaptureSlotWait"/>.</exception>
    public async Task<CaptureSlotLease> AcquireAsync(CancellationToken ct)
    {
        if (!await _slots.WaitAsync(options.CaptureSlotWait, ct))
            throw new BoughException(ErrorCodes.TooManyCaptures,
                $"{options.MaxConcurrentCaptures} captures have been running for {options.CaptureSlotWait.TotalSeconds:0} s; try again shortly")
            { RetryAfter = TimeSpan.FromSeconds(1) };
        return new CaptureSlotLease(_slots);
    }
}

/// <summary>One capture slot; released exactly once.</summary>
internal sealed class CaptureSlotLease(SemaphoreSlim slots) : IDisposable
{
    private SemaphoreSlim? _slots = slots;
    public void Dispose() => Interlocked.Exchange(ref _slots, null)?.Release();
}
