using Bough.Contracts;

namespace Bough.Dashboard.Components.Snapshots;

/// <summary>
/// The snapshot list as a family tree, for the snapshots page: ancestors of a row (its chain of parents), what a
/// cascading delete would remove (every descendant), which sandboxes would block it, and how much a snapshot
/// stores against what it represents. Built from one listing, so one page render answers from one consistent view.
/// </summary>
public sealed class SnapshotLineage
{
    private readonly Dictionary<string, Snapshot> _byId;
    private readonly ILookup<string, Snapshot> _children;
    private readonly ILookup<string, Sandbox> _sandboxes;

    public SnapshotLineage(IReadOnlyList<Snapshot> snapshots, IReadOnlyList<Sandbox> sandboxes)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(sandboxes);
        _byId = snapshots.ToDictionary(s => s.Id, StringComparer.Ordinal);
        _children = snapshots.Where(s => s.ParentId is not null).ToLookup(s => s.ParentId!, StringComparer.Ordinal);
        _sandboxes = sandboxes.Where(b => b.SnapshotId is not null).ToLookup(b => b.SnapshotId!, StringComparer.Ordinal);
    }

    /// <summary>The parents of <paramref name="snapshot"/>, oldest first (a parent no longer listed ends the chain).</summary>
    public IReadOnlyList<string> Ancestors(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var chain = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { snapshot.Id };
        for (var parent = snapshot.ParentId; parent is not null && seen.Add(parent); parent = _byId.GetValueOrDefault(parent)?.ParentId)
            chain.Add(parent);
        chain.Reverse();
        return chain;
    }

    /// <summary>Every snapshot below <paramref name="id"/> (what a cascade removes with it), nearest first.</summary>
    public IReadOnlyList<Snapshot> Descendants(string id)
    {
        var found = new List<Snapshot>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { id };
        var queue = new Queue<string>([id]);
        while (queue.TryDequeue(out var current))
        {
            foreach (var child in _children[current])
            {
                if (seen.Add(child.Id))
                {
                    found.Add(child);
                    queue.Enqueue(child.Id);
                }
            }
        }
        return found;
    }

    /// <summary>Sandboxes started from <paramref name="id"/> or a descendant: while any exists, the delete is refused.</summary>
    public IReadOnlyList<Sandbox> SandboxesUsing(string id) =>
        [.. _sandboxes[id], .. Descendants(id).SelectMany(d => _sandboxes[d.Id])];

    /// <summary>What this snapshot's own layers take on disk.</summary>
    public static long StoredBytes(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return snapshot.MemoryBytes + snapshot.DiskBytes;
    }

    /// <summary>
    /// What the snapshot represents: its guest's whole memory plus the disk layers of its chain (what a standalone
    /// copy would hold before zero pages are dropped). The gap to <see cref="StoredBytes"/> is what sharing pages
    /// and layers with its ancestors (and skipping zero pages) saved.
    /// </summary>
    public long LogicalBytes(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var disk = snapshot.DiskBytes + Ancestors(snapshot).Sum(a => _byId.GetValueOrDefault(a)?.DiskBytes ?? 0);
        return Math.Max(snapshot.MemoryMiB * 1024L * 1024 + disk, StoredBytes(snapshot));
    }
}
