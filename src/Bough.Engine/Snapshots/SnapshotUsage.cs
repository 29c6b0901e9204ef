using Bough.Catalog;

namespace Bough.Engine.Snapshots;

/// <summary>Who depends on which snapshot, computed from catalog rows (one rule for delete and for GC).</summary>
internal sealed class SnapshotUsage
{
    private readonly IReadOnlyList<SnapshotRecord> _snapshots;
    private readonly IReadOnlyList<SandboxRecord> _sandboxes;
    private readonly IReadOnlyList<TemplateRecord> _templates;
    private readonly Dictionary<string, string> _newestBySource;

    public SnapshotUsage(IReadOnlyList<SnapshotRecord> snapshots, IReadOnlyList<SandboxRecord> sandboxes, IReadOnlyList<TemplateRecord> templates)
    {
        _snapshots = snapshots;
        _sandboxes = sandboxes;
        _templates = templates;
        // A source's live overlay is layered on its newest snapshot's frozen disk.
        _newestBySource = snapshots.Where(s => s.SourceSandboxId is not null && s.Kind != SnapshotKind.Compacted)
            .GroupBy(s => s.SourceSandboxId!).ToDictionary(g => g.Key, g => g.Last().Id, StringComparer.Ordinal);
    }

    /// <summary>
    /// Sandboxes that run on the snapshot: started from or paused into it, mapping its memory,
    /// or (its source) writing to an overlay on its frozen disk.
    /// </summary>
    public IEnumerable<SandboxRecord> SandboxesUsing(SnapshotRecord s) => _sandboxes.Where(b =>
        b.SnapshotId == s.Id
        || (b.MemoryFile is { } m && m.StartsWith(s.Dir + "/", StringComparison.Ordinal))
        || (_newestBySource.TryGetValue(b.Id, out var newest) && newest == s.Id));

    public IEnumerable<TemplateRecord> TemplatesUsing(SnapshotRecord s) => _templates.Where(t => t.SnapshotId == s.Id);

    public IEnumerable<SnapshotRecord> ChildrenOf(SnapshotRecord s) => _snapshots.Where(c => c.ParentId == s.Id);

    /// <summary>The snapshot and all its descendants, parents first.</summary>
    public List<SnapshotRecord> Subtree(SnapshotRecord root)
    {
        var subtree = new List<SnapshotRecord> { root };
        for (var i = 0; i < subtree.Count; i++) subtree.AddRange(ChildrenOf(subtree[i]));
        return subtree;
    }

    /// <summary>
    /// For collection: nothing depends on it at all. Stricter than <see cref="SandboxesUsing"/>:
    /// a source that still exists depends on every snapshot it was captured into (its disk
    /// chain runs through all of their frozen layers).
    /// </summary>
    public bool IsUnused(SnapshotRecord s) =>
        !ChildrenOf(s).Any() && !TemplatesUsing(s).Any() && !SandboxesUsing(s).Any()
        && !_sandboxes.Any(b => b.Id == s.SourceSandboxId);
}
