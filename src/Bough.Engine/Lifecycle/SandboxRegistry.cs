using System.Collections.Concurrent;
using Bough.Contracts;

namespace Bough.Engine.Lifecycle;

/// <summary>
/// The sandboxes this daemon has a live runtime for, and the per-sandbox lifecycle locks
/// (<see cref="LockOrder.SandboxLifecycle"/>).
/// </summary>
/// <remarks>
/// Locks are keyed by sandbox id, not hung on a runtime object: a paused sandbox has no
/// runtime but still needs its lock (delete vs resume), and a lock on a runtime that a pause
/// or resume has since replaced would protect nothing. Whoever holds an id's lease is the
/// only one who may add or replace that id's runtime; the exit watcher may only remove it.
/// Lock entries are reference-counted and dropped when nobody holds or waits for them.
/// </remarks>
internal sealed class SandboxRegistry
{
    private readonly ConcurrentDictionary<string, SandboxRuntime> _runtimes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LockEntry> _locks = new(StringComparer.Ordinal);
    private readonly Lock _locksGate = new();

    public IReadOnlyCollection<SandboxRuntime> Runtimes => _runtimes.Values.ToList();

    public bool TryGet(string id, out SandboxRuntime runtime) => _runtimes.TryGetValue(id, out runtime!);

    public SandboxRuntime? Get(string id) => _runtimes.TryGetValue(id, out var rt) ? rt : null;

    /// <summary>Adds or replaces <paramref name="runtime"/>; the caller holds its lease.</summary>
    public void Set(LifecycleLease lease, SandboxRuntime runtime)
    {
        lease.EnsureHeld(runtime.Id);
        _runtimes[runtime.Id] = runtime;
    }

    /// <summary>Removes exactly this runtime (not a newer one that replaced it).</summary>
    public bool Remove(SandboxRuntime runtime) =>
        _runtimes.TryRemove(new KeyValuePair<string, SandboxRuntime>(runtime.Id, runtime));

    public void Clear() => _runtimes.Clear();

    /// <summary>
    /// Takes <paramref name="id"/>'s lifecycle lease. With a <paramref name="wait"/>, a lease
    /// not free in time is 409 sandbox_busy naming the operation that holds it.
    /// </summary>
    public async Task<LifecycleLease> AcquireAsync(string id, SandboxOperation operation, TimeSpan? wait, CancellationToken ct)
    {
        LockEntry entry;
        lock (_locksGate)
        {
            if (!_locks.TryGetValue(id, out entry!)) _locks[id] = entry = new LockEntry();
            entry.Refs++;
        }
        try
        {
            if (wait is { } w)
            {
                if (!await entry.Semaphore.WaitAsync(w, ct))
                    throw new BoughException(ErrorCodes.SandboxBusy,
                        $"sandbox {id} is busy: {entry.Holder?.ToVerb() ?? "another operation"} in progress; try again shortly");
            }
            else
            {
                await entry.Semaphore.WaitAsync(ct);
            }
        }
        catch
        {
            Unref(id, entry);
            throw;
        }
        entry.Holder = operation;
        return new LifecycleLease(this, id, operation, entry);
    }

    /// <summary>The operation holding <paramref name="id"/>'s lease now, if any.</summary>
    public SandboxOperation? HolderOf(string id)
    {
        lock (_locksGate) return _locks.TryGetValue(id, out var e) ? e.Holder : null;
    }

    internal void Release(string id, LockEntry entry)
    {
        entry.Holder = null;
        entry.Semaphore.Release();
        Unref(id, entry);
    }

    private void Unref(string id, LockEntry entry)
    {
        lock (_locksGate)
        {
            if (--entry.Refs == 0) _locks.Remove(id);
        }
    }

    internal sealed class LockEntry
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);
        public int Refs;
        public volatile SandboxOperationBox? HolderBox;

        public SandboxOperation? Holder
        {
            get => HolderBox?.Value;
            set => HolderBox = value is { } v ? new SandboxOperationBox(v) : null;
        }
    }

    /// <summary>A reference wrapper so the holder can be published with a volatile write.</summary>
    internal sealed record SandboxOperationBox(SandboxOperation Value);
}
