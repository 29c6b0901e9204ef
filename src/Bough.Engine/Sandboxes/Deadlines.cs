using Bough.Catalog;
using Bough.Engine.Lifecycle;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Sets sandboxes' deadlines and tells the <see cref="DeadlineEnforcer"/> when one changed, so it
/// re-plans its next wake-up at once instead of sleeping past a shortened deadline. Shared by
/// everything that sets a deadline (create, children, resume, the timeout endpoint), so none of
/// them depends on the enforcer (which depends on them).
/// </summary>
internal sealed class Deadlines(SandboxStore store, TimeProvider time)
{
    private TaskCompletionSource _changed = NewSignal();

    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>Completes at the next <see cref="Changed"/> after it was read.</summary>
    public Task WhenChanged => Volatile.Read(ref _changed).Task;

    public void Changed() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    /// <summary>
    /// Starts the clock of a sandbox that has just come up: its deadline is
    /// <paramref name="lifetime"/> from now. The caller holds the sandbox's lifecycle lease.
    /// </summary>
    public async Task<SandboxRecord> StartAsync(SandboxRuntime rt, Lifetime lifetime)
    {
        var endAt = lifetime.EndAt(Now);
        var record = rt.Record.EndAt == endAt && rt.Record.OnTimeout == lifetime.OnTimeout
            ? rt.Record
            : await rt.UpdateAsync(store, r => r with { EndAt = endAt, OnTimeout = lifetime.OnTimeout });
        // Also when the row already said so (set at insert): the enforcer has not been told yet.
        if (endAt is not null) Changed();
        return record;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
