using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Sandboxes;
using Bough.Snapshots;

namespace Bough.Engine.Snapshots;

/// <summary>The snapshot catalog as the API sees it: list, show (lineage), delete (cascade), compact, tree.</summary>
internal sealed class SnapshotService(
    SnapshotStore snapshots, SandboxStore sandboxes, TemplateStore templates, SnapshotLeases leases,
    SnapshotFilesystem files, SnapshotGc gc, ISandboxService sandboxService) : ISnapshotService
{
    public async Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(CancellationToken ct) =>
        (await snapshots.ListAsync(ct)).Select(ContractMapping.ToContract).ToList();

    public async Task<Snapshot> GetSnapshotAsync(string idOrTag, CancellationToken ct)
    {
        var snap = await ResolveAsync(idOrTag, ct);
        var all = await snapshots.ListAsync(ct);
        var byId = all.ToDictionary(s => s.Id, StringComparer.Ordinal);
        var ancestors = new List<string>();
        for (var p = snap.ParentId; p is not null && byId.TryGetValue(p, out var parent); p = parent.ParentId)
            ancestors.Insert(0, p);
        return ContractMapping.ToContract(snap) with
        {
            Ancestors = ancestors,
            Children = all.Where(s => s.ParentId == snap.Id).Select(s => s.Id).ToList(),
            Sandboxes = (await sandboxes.ListAsync(ct)).Where(s => s.SnapshotId == snap.Id).Select(s => s.Id).ToList(),
        };
    }

    public async Task DeleteSnapshotAsync(string idOrTag, bool cascade, CancellationToken ct)
    {
        var snap = await ResolveAsync(idOrTag, ct);
        var all = await snapshots.ListAsync(ct);
        var subtree = new SnapshotUsage(all, [], []).Subtree(snap);
        // Claim first, then read who uses it: a child start holds its lease from before its row
        // names the snapshot, so after a successful claim every user is in the rows read below.
        using (var claim = leases.TryClaim(subtree.Select(s => s.Id).ToList())
            ?? throw new BoughException(ErrorCodes.SnapshotInUse,
                $"snapshot {snap.Id}{(subtree.Count > 1 ? " or a descendant" : "")} is in use: a sandbox is starting from it (or it is being deleted); try again when it has started"))
        {
            var usage = new SnapshotUsage(all, await sandboxes.ListAsync(ct), await templates.ListAsync(ct));
            var owners = subtree.SelectMany(usage.TemplatesUsing).Select(t => t.Name).ToList();
            if (owners.Count > 0)
                throw new BoughException(ErrorCodes.SnapshotInUse,
                    $"snapshot {snap.Id}{(subtree.Count > 1 ? " or a descendant" : "")} belongs to template(s) {string.Join(", ", owners)}; delete the template instead (DELETE /v1/templates/NAME, `bough template rm`)");
            if (!cascade && subtree.Count > 1)
                throw new BoughException(ErrorCodes.SnapshotInUse,
                    $"snapshot {snap.Id} has child snapshots ({string.Join(", ", subtree.Skip(1).Select(s => s.Id))}); delete them first, or delete the subtree with cascade (?cascade=true, `bough rm-snapshot --cascade`)");
            var users = subtree.SelectMany(usage.SandboxesUsing).Select(b => b.Id).Distinct().ToList();
            if (users.Count > 0)
                throw new BoughException(ErrorCodes.SnapshotInUse,
                    $"snapshot {snap.Id}{(cascade && subtree.Count > 1 ? " or its descendants" : "")} is used by sandbox(es) {string.Join(", ", users)}; delete those sandboxes first");
            await files.RemoveAsync(subtree, "deleted by request");
        }
        await gc.CollectAsync(); // its parent may have been an implicit branch snapshot kept only for it
    }

    public async Task<Snapshot> CompactSnapshotAsync(string idOrTag, string? tag, CancellationToken ct)
    {
        SnapshotNames.ValidateTag(tag);
        var source = await ResolveAsync(idOrTag, ct);
        using var lease = leases.Acquire(source.Id);
        var id = SnapshotNames.NewId();
        tag ??= $"{source.Tag ?? source.Id}.compact-{id[3..]}";
        if (await snapshots.GetByTagAsync(tag, ct) is not null)
            throw new BoughException(ErrorCodes.TagExists, $"tag '{tag}' is already used");
        var staging = files.NewStagingDir(id);
        try
        {
            await MemoryCompactor.CompactAsync(new SnapshotRef(source.Id, source.Dir), staging, ct);
            var record = new SnapshotRecord
            {
                Id = id, Tag = tag, ParentId = null, SourceSandboxId = source.SourceSandboxId, Depth = 1,
                Kind = SnapshotKind.Compacted, Image = source.Image, Vcpus = source.Vcpus, MemoryMiB = source.MemoryMiB,
                MemoryBytes = SnapshotFilesystem.FileSize(Path.Combine(staging, SnapshotFiles.Layer)),
                DiskBytes = SnapshotFilesystem.FileSize(Path.Combine(staging, SnapshotFiles.Disk)),
                Dir = files.DirFor(id), CreatedAt = DateTimeOffset.UtcNow,
            };
            return ContractMapping.ToContract(await files.PublishAsync(staging, record));
        }
        catch (TagTakenException ex)
        {
            throw new BoughException(ErrorCodes.TagExists, ex.Message, ex);
        }
        finally
        {
            files.TryDeleteDirectory(staging);
        }
    }

    public async Task<LineageTree> GetTreeAsync(CancellationToken ct)
    {
        var snaps = await snapshots.ListAsync(ct);
        var boxes = await sandboxService.ListAsync(ct);
        var ids = snaps.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        TreeNode Node(SnapshotRecord s) => new()
        {
            Kind = "snapshot", Id = s.Id, Tag = s.Tag, SnapshotKind = s.Kind.ToName(),
            Children = snaps.Where(c => c.ParentId == s.Id).Select(Node)
                .Concat(boxes.Where(b => b.SnapshotId == s.Id).Select(Leaf)).ToList(),
        };
        static TreeNode Leaf(Sandbox b) => new() { Kind = "sandbox", Id = b.Id, State = b.State };
        var roots = snaps.Where(s => s.ParentId is null || !ids.Contains(s.ParentId)).Select(Node)
            .Concat(boxes.Where(b => b.SnapshotId is null || !ids.Contains(b.SnapshotId)).Select(Leaf)).ToList();
        return new LineageTree(roots);
    }

    public async Task<SnapshotRecord> ResolveAsync(string idOrTag, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(idOrTag)) throw BoughException.Invalid("snapshot id or tag is required");
        var snap = (SnapshotNames.IsId(idOrTag) ? await snapshots.GetAsync(idOrTag, ct) : null)
                   ?? await snapshots.GetByTagAsync(idOrTag, ct);
        return snap ?? throw new BoughException(ErrorCodes.SnapshotNotFound, $"no snapshot with id or tag '{idOrTag}'");
    }
}
