using Bough.Contracts;

namespace Bough.Engine.Snapshots;

/// <summary>
/// Keeps snapshots alive while something is about to depend on them. A child start leases
/// its snapshot before its row names it and holds the lease until the VM has mapped the
/// snapshot's files; a delete (API, cascade, template, GC) must first claim the snapshots it
/// removes, which fails while any is leased, and no new lease is granted on a claimed one.
/// Evicting a cached <c>memory.img</c> likewise happens only while unleased, under the same lock.
/// </summary>
/// <remarks>The lock is held only for the table updates (and one file delete), never across I/O waits.</remarks>
internal sealed class SnapshotLeases
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _leases = new(StringComparer.Ordinal);
    private readonly HashSet<string> _claimed = new(StringComparer.Ordinal);

    /// <exception cref="BoughException">snapshot_not_found when the snapshot is being deleted.</exception>
    public IDisposable Acquire(string snapshotId)
    {
        lock (_gate)
        {
            if (_claimed.Contains(snapshotId))
                throw new BoughException(ErrorCodes.SnapshotNotFound, $"snapshot {snapshotId} is being deleted");
            _leases[snapshotId] = _leases.GetValueOrDefault(snapshotId) + 1;
        }
        return new Releaser(() =>
        {
            lock (_gate)
            {
                if (--_leases[snapshotId] == 0) _leases.Remove(snapshotId);
            }
        });
    }

    public bool IsLeased(string snapshotId)
    {
        lock (_gate) return _leases.ContainsKey(snapshotId);
    }

    /// <summary>Claims <paramref name="ids"/> for deletion; null (nothing claimed) when any is leased or already claimed.</summary>
    public IDisposable? TryClaim(IReadOnlyCollection<string> ids)
    {
        lock (_gate)
        {
            if (ids.Any(id => _leases.ContainsKey(id) || _claimed.Contains(id))) return null;
            foreach (var id in ids) _claimed.Add(id);
        }
        return new Releaser(() =>
        {
            lock (_gate)
            {
                foreach (var id in ids) _claimed.Remove(id);
            }
        });
    }

    /// <summary>Runs <paramref name="evict"/> only if the snapshot is neither leased nor claimed; true if it ran.</summary>
    public bool RunIfIdle(string snapshotId, Action evict)
    {
        lock (_gate)
        {
            if (_leases.ContainsKey(snapshotId) || _claimed.Contains(snapshotId)) return false;
            evict();
            return true;
        }
    }

    private sealed class Releaser(Action release) : IDisposable
    {
        private Action? _release = release;
        public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
