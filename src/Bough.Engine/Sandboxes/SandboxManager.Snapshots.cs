using System.Diagnostics;
using Bough.AgentClient;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Snapshots;
using Bough.Snapshots;
using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Live branching, pause/resume and the snapshot catalog. Captures run under the source
/// sandbox's lifecycle lock plus one of <see cref="EngineOptions.MaxConcurrentCaptures"/>
/// global slots (lock order: sandbox lifecycle, then capture slot); children and resumed
/// sandboxes are started outside any global lock.
/// </summary>
public sealed partial class SandboxManager : ISnapshotService
{

    // ---------------------------------------------------------------- capture

    public async Task<Snapshot> SnapshotAsync(string sandboxId, string? tag, CancellationToken ct)
    {
        SnapshotNames.ValidateTag(tag);
        var rt = await LockForCaptureAsync(sandboxId, "snapshot", ct);
        try
        {
            var snap = await CaptureAsync(rt, tag, "snapshot", ct);
            return ToContract(snap);
        }
        finally { ReleaseLifecycle(rt); }
    }

    /// <summary>Captures a template's builder sandbox: kind "template", so snapshot listings say what it is.</summary>
    internal async Task<Snapshot> CaptureTemplateAsync(string sandboxId, string? tag, CancellationToken ct)
    {
        var rt = await LockForCaptureAsync(sandboxId, "snapshot", ct);
        try { return ToContract(await CaptureAsync(rt, tag, "template", ct)); }
        finally { ReleaseLifecycle(rt); }
    }

    public async Task<BranchResult> BranchAsync(string sandboxId, BranchRequest request, CancellationToken ct)
    {
        var count = request.Count ?? 1;
        if (count < 1 || count > EngineOptions.MaxBranchCount)
            throw BoughException.Invalid($"count must be between 1 and {EngineOptions.MaxBranchCount} (got {count})");
        if (request.Children is { } kids && kids.Count > count)
            throw BoughException.Invalid($"children has {kids.Count} entries but count is {count}");
        SnapshotNames.ValidateTag(request.Tag);
        var perChild = Enumerable.Range(0, count).Select(i =>
        {
            var c = request.Children is { } k && i < k.Count ? k[i] : null;
            return (Env: RequestValidation.ValidateEnv(c?.Env, $"children[{i}].env"),
                    Meta: RequestValidation.ValidateMap(c?.Metadata, $"children[{i}].metadata"));
        }).ToList();

        SnapshotRecord snap;
        SandboxRecord source;
        var rt = await LockForCaptureAsync(sandboxId, "branch", ct);
        try
        {
            snap = await CaptureAsync(rt, request.Tag, "branch", ct);
            source = rt.Record;
        }
        finally { ReleaseLifecycle(rt); }

        // Children start after the source is released: the source keeps serving meanwhile.
        try
        {
            var children = await StartManyAsync(snap, count, i => new ChildSpec(
                Env: Merge(source.Env, perChild[i].Env),
                Metadata: perChild[i].Meta,
                Internet: source.Internet,
                Ports: source.Ports.Select(p => p.GuestPort).ToList()), ct);
            return new BranchResult(ToContract(snap), snap.PauseMs ?? 0, children);
        }
        catch (BoughException ex)
        {
            // The capture itself succeeded and is kept: say so, so the caller can retry from it.
            throw new BoughException(ex.Code,
                $"{ex.Message} (no children were kept; the snapshot {snap.Id} ({snap.Tag}) was, and " +
                $"POST /v1/sandboxes {{\"snapshot\": \"{snap.Id}\"}} starts children from it)", ex) { RetryAfter = ex.RetryAfter };
        }
    }

    public Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, CancellationToken ct) =>
        CreateFromSnapshotAsync(request, template: null, ct);

    /// <summary>As the public form; <paramref name="template"/> is recorded on each sandbox (for template_in_use).</summary>
    internal async Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, string? template, CancellationToken ct)
    {
        var snap = await ResolveSnapshotAsync(request.Snapshot ?? throw BoughException.Invalid("snapshot is required"), ct);
        var count = request.Count ?? 1;
        if (count < 1 || count > EngineOptions.MaxBranchCount)
            throw BoughException.Invalid($"count must be between 1 and {EngineOptions.MaxBranchCount} (got {count})");
        if (request.Vcpus is { } v && v != snap.Vcpus)
            throw BoughException.Invalid($"vcpus is fixed by the snapshot ({snap.Vcpus})");
        if (request.MemoryMiB is { } m && m != snap.MemoryMiB)
            throw BoughException.Invalid($"memoryMiB is fixed by the snapshot ({snap.MemoryMiB})");
        if (request.Image is { } img && img != snap.Image)
            throw BoughException.Invalid($"image is fixed by the snapshot ({snap.Image})");
        // Reuse the create validation for env/metadata/ports.
        var spec = RequestValidation.ValidateCreate(request with { Snapshot = null, Count = null, Image = snap.Image,
            Vcpus = snap.Vcpus, MemoryMiB = snap.MemoryMiB }, _options);
        return await StartManyAsync(snap, count, _ => new ChildSpec(spec.Env, spec.Metadata, spec.Internet, spec.Ports, template), ct);
    }

    // ---------------------------------------------------------------- pause / resume

    public async Task<Sandbox> PauseAsync(string sandboxId, CancellationToken ct)
    {
        var rt = await LockForCaptureAsync(sandboxId, "pause", ct);
        try
        {
            var snap = await CaptureAsync(rt, null, "pause", ct);
            // The state is on disk: the VM can go. Persist 'paused' first, so a crash from here
            // on finds a paused sandbox (its leftover QEMU is killed by recovery).
            rt.Stopping = true;
            var record = rt.Record with
            {
                State = SandboxStates.Paused, StateReason = null, SnapshotId = snap.Id, Pid = null,
                MemoryFile = null, DiskPath = null, // no VM maps or writes anything now
            };
            await _store.UpdateAsync(record, CancellationToken.None);
            rt.Record = record;
            await DisposeRuntimeAsync(rt, rt.Vm);
            rt.Vm = null;
            _sandboxes.TryRemove(new KeyValuePair<string, SandboxRuntime>(rt.Id, rt));
            // Files only the dead VM used: its RAM file (unless it was a snapshot's) and disks.
            foreach (var f in Directory.EnumerateFiles(record.RuntimeDir, "disk*.qcow2")) TryDeleteFile(f);
            if (record.MemoryFile is { } mem && mem.StartsWith(record.RuntimeDir, StringComparison.Ordinal)) TryDeleteFile(mem);
            _log.LogInformation("sandbox {Id} paused into {Snapshot} ({PauseMs} ms stopped)", rt.Id, snap.Id, snap.PauseMs);
            await CollectGarbageAsync(deletedSandboxId: null);
            return ToContract(record);
        }
        finally { ReleaseLifecycle(rt); }
    }

    public async Task<Sandbox> ResumeAsync(string sandboxId, CancellationToken ct)
    {
        if (_sandboxes.TryGetValue(sandboxId, out var live))
            throw new BoughException(ErrorCodes.SandboxNotRunning,
                $"sandbox {sandboxId} is {live.Record.State}" + (live.Operation is { } op ? $" ({op} in progress)" : "") + "; only a paused sandbox can be resumed");
        var row = SandboxId.IsWellFormed(sandboxId) ? await _store.GetAsync(sandboxId, ct) : null;
        if (row is null) throw BoughException.NotFound(sandboxId);
        if (row.State != SandboxStates.Paused || row.SnapshotId is null)
            throw new BoughException(ErrorCodes.SandboxNotRunning, $"sandbox {sandboxId} is {row.State}; only a paused sandbox can be resumed");
        var snap = await _snapshots.GetAsync(row.SnapshotId, ct)
                   ?? throw new BoughException(ErrorCodes.SnapshotNotFound, $"the pause snapshot {row.SnapshotId} of {sandboxId} is missing");

        var rt = new SandboxRuntime(row with { State = SandboxStates.Starting });
        if (!_sandboxes.TryAdd(sandboxId, rt))
            throw new BoughException(ErrorCodes.SandboxBusy, $"sandbox {sandboxId} is already being resumed");
        await rt.Lifecycle.WaitAsync(ct);
        rt.Operation = "resume";
        try
        {
            var sb = await StartFromSnapshotAsync(rt, snap, new ChildSpec(row.Env, row.Metadata, row.Internet,
                row.Ports.Select(p => p.GuestPort).ToList()), isResume: true, ct);
            _log.LogInformation("sandbox {Id} resumed from {Snapshot}", sandboxId, snap.Id);
            return sb;
        }
        catch
        {
            // StartFromSnapshotAsync put the row back to 'paused'; forget the runtime.
            _sandboxes.TryRemove(new KeyValuePair<string, SandboxRuntime>(sandboxId, rt));
            throw;
        }
        finally { ReleaseLifecycle(rt); }
    }

    // ---------------------------------------------------------------- catalog

    public async Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(CancellationToken ct) =>
        (await _snapshots.ListAsync(ct)).Select(ToContract).ToList();

    public async Task<Snapshot> GetSnapshotAsync(string idOrTag, CancellationToken ct)
    {
        var snap = await ResolveSnapshotAsync(idOrTag, ct);
        var all = await _snapshots.ListAsync(ct);
        var byId = all.ToDictionary(s => s.Id);
        var ancestors = new List<string>();
        for (var p = snap.ParentId; p is not null && byId.TryGetValue(p, out var parent); p = parent.ParentId)
            ancestors.Insert(0, p);
        var sandboxes = (await _store.ListAsync(ct)).Where(s => s.SnapshotId == snap.Id).Select(s => s.Id).ToList();
        return ToContract(snap) with
        {
            Ancestors = ancestors,
            Children = all.Where(s => s.ParentId == snap.Id).Select(s => s.Id).ToList(),
            Sandboxes = sandboxes,
        };
    }

    public async Task DeleteSnapshotAsync(string idOrTag, bool cascade, CancellationToken ct)
    {
        var snap = await ResolveSnapshotAsync(idOrTag, ct);
        var all = await _snapshots.ListAsync(ct);
        var subtree = new List<SnapshotRecord> { snap };
        for (var i = 0; i < subtree.Count; i++)
            subtree.AddRange(all.Where(s => s.ParentId == subtree[i].Id));
        var ids = subtree.Select(s => s.Id).ToHashSet();
        var sandboxes = await _store.ListAsync(ct);
        // A sandbox uses a snapshot when it started from it (its RAM file and disk chain), and
        // its source uses its newest snapshot: the source's live overlay is layered on that
        // snapshot's frozen disk.
        var newestBySource = all.Where(s => s.SourceSandboxId is not null && s.Kind != "compacted")
            .GroupBy(s => s.SourceSandboxId!).ToDictionary(g => g.Key, g => g.Last().Id);
        var users = sandboxes.Where(b =>
            (b.SnapshotId is { } sid && ids.Contains(sid)) ||
            (newestBySource.TryGetValue(b.Id, out var newest) && ids.Contains(newest))).ToList();

        var templates = (await _templates.ListAsync(ct)).Where(t => ids.Contains(t.SnapshotId)).Select(t => t.Name).ToList();
        if (templates.Count > 0)
            throw new BoughException(ErrorCodes.SnapshotInUse,
                $"snapshot {snap.Id}{(subtree.Count > 1 ? " or a descendant" : "")} belongs to template(s) {string.Join(", ", templates)}; delete the template instead (DELETE /v1/templates/NAME, `bough template rm`)");
        if (!cascade && subtree.Count > 1)
            throw new BoughException(ErrorCodes.SnapshotInUse,
                $"snapshot {snap.Id} has child snapshots ({string.Join(", ", subtree.Skip(1).Select(s => s.Id))}); delete them first, or delete the subtree with cascade (?cascade=true, `bough rm-snapshot --cascade`)");
        if (users.Count > 0)
            throw new BoughException(ErrorCodes.SnapshotInUse,
                $"snapshot {snap.Id}{(cascade && subtree.Count > 1 ? " or its descendants" : "")} is used by sandbox(es) {string.Join(", ", users.Select(u => u.Id))}; delete those sandboxes first");

        // Leaves first, so a crash half-way never leaves a child whose parent is gone.
        foreach (var s in Enumerable.Reverse(subtree))
        {
            await _snapshots.DeleteAsync(s.Id, CancellationToken.None);
            TryDeleteDirectory(s.Dir);
            _log.LogInformation("deleted snapshot {Id}", s.Id);
        }
    }

    public async Task<Snapshot> CompactSnapshotAsync(string idOrTag, string? tag, CancellationToken ct)
    {
        SnapshotNames.ValidateTag(tag);
        var source = await ResolveSnapshotAsync(idOrTag, ct);
        var id = SnapshotNames.NewId();
        tag ??= $"{source.Tag ?? source.Id}.compact-{id[3..]}";
        if (await _snapshots.GetByTagAsync(tag, ct) is not null)
            throw new BoughException(ErrorCodes.TagExists, $"tag '{tag}' is already used");
        var staging = StagingDir(id);
        try
        {
            await MemoryCompactor.CompactAsync(new SnapshotRef(source.Id, source.Dir), staging, ct);
            var record = new SnapshotRecord
            {
                Id = id, Tag = tag, ParentId = null, SourceSandboxId = source.SourceSandboxId, Depth = 1,
                Kind = "compacted", Image = source.Image, Vcpus = source.Vcpus, MemoryMiB = source.MemoryMiB,
                MemoryBytes = FileSize(Path.Combine(staging, SnapshotFiles.Layer)),
                DiskBytes = FileSize(Path.Combine(staging, SnapshotFiles.Disk)),
                Dir = Path.Combine(_options.SnapshotsDir, id), CreatedAt = DateTimeOffset.UtcNow,
            };
            return ToContract(await PublishAsync(staging, record));
        }
        catch
        {
            TryDeleteDirectory(staging);
            throw;
        }
    }

    public async Task<LineageTree> GetTreeAsync(CancellationToken ct)
    {
        var snaps = await _snapshots.ListAsync(ct);
        var boxes = await ListAsync(ct);
        var ids = snaps.Select(s => s.Id).ToHashSet();
        TreeNode Node(SnapshotRecord s) => new()
        {
            Kind = "snapshot", Id = s.Id, Tag = s.Tag,
            Children = snaps.Where(c => c.ParentId == s.Id).Select(Node)
                .Concat(boxes.Where(b => b.SnapshotId == s.Id).Select(Leaf)).ToList(),
        };
        TreeNode Leaf(Sandbox b) => new() { Kind = "sandbox", Id = b.Id, State = b.State };
        var roots = snaps.Where(s => s.ParentId is null || !ids.Contains(s.ParentId)).Select(Node)
            .Concat(boxes.Where(b => b.SnapshotId is null || !ids.Contains(b.SnapshotId)).Select(Leaf)).ToList();
        return new LineageTree(roots);
    }

    // ---------------------------------------------------------------- garbage

    /// <summary>
    /// Pause snapshots are the sandbox's own state, not something the user asked to keep: they
    /// go with the sandbox once nothing else depends on them (leaves first). And a pause
    /// snapshot's memory.img is only a cache for mapping (rebuildable from the layers), so it is
    /// evicted once no sandbox maps it or will map it on resume; the layers stay.
    /// </summary>
    private async Task CollectGarbageAsync(string? deletedSandboxId)
    {
        try
        {
            var snaps = (await _snapshots.ListAsync(CancellationToken.None)).ToList();
            var boxes = await _store.ListAsync(CancellationToken.None);
            bool Used(SnapshotRecord s) =>
                snaps.Any(c => c.ParentId == s.Id) || boxes.Any(b => b.SnapshotId == s.Id || b.Id == s.SourceSandboxId
                    || (b.MemoryFile is { } m && m.StartsWith(s.Dir + "/", StringComparison.Ordinal)));

            for (var removed = true; removed && deletedSandboxId is not null;)
            {
                removed = false;
                var leaf = snaps.FirstOrDefault(s => s.Kind == "pause" && s.SourceSandboxId == deletedSandboxId && !Used(s));
                if (leaf is null) break;
                await _snapshots.DeleteAsync(leaf.Id, CancellationToken.None);
                TryDeleteDirectory(leaf.Dir);
                snaps.Remove(leaf);
                removed = true;
                _log.LogInformation("removed pause snapshot {Id} of deleted sandbox {Sandbox}", leaf.Id, deletedSandboxId);
            }

            foreach (var s in snaps.Where(s => s.Kind == "pause"))
            {
                if (boxes.Any(b => b.SnapshotId == s.Id || (b.MemoryFile is { } m && m.StartsWith(s.Dir + "/", StringComparison.Ordinal))))
                    continue;
                var image = Path.Combine(s.Dir, SnapshotFiles.Image);
                if (File.Exists(image))
                {
                    TryDeleteFile(image);
                    _log.LogDebug("evicted the memory image of {Id}", s.Id);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or Microsoft.Data.Sqlite.SqliteException)
        {
            _log.LogWarning(ex, "snapshot garbage collection failed; will retry on the next pause or delete");
        }
    }

    // ---------------------------------------------------------------- internals

    private sealed record ChildSpec(IReadOnlyDictionary<string, string> Env, IReadOnlyDictionary<string, string> Metadata,
        bool Internet, IReadOnlyList<int> Ports, string? Template = null);

    /// <summary>Takes the sandbox's lifecycle lock (waiting briefly) and a global capture slot.</summary>
    private async Task<SandboxRuntime> LockForCaptureAsync(string id, string operation, CancellationToken ct)
    {
        if (!_sandboxes.TryGetValue(id, out var rt))
        {
            var sb = await GetAsync(id, ct);
            throw new BoughException(ErrorCodes.SandboxNotRunning, $"cannot {operation} sandbox {id}: it is {sb.State}");
        }
        if (!await rt.Lifecycle.WaitAsync(_options.BusyWait, ct))
            throw new BoughException(ErrorCodes.SandboxBusy,
                $"sandbox {id} is busy: {rt.Operation ?? "another operation"} in progress; try again shortly");
        if (rt.Stopping || rt.Record.State != SandboxStates.Running || rt.Vm is null)
        {
            rt.Lifecycle.Release();
            throw new BoughException(ErrorCodes.SandboxNotRunning, $"cannot {operation} sandbox {id}: it is {rt.Record.State}");
        }
        if (!await _captureSlots.WaitAsync(_options.BusyWait, ct))
        {
            rt.Lifecycle.Release();
            throw new BoughException(ErrorCodes.TooManyCaptures,
                $"{_options.MaxConcurrentCaptures} captures are already running; try again shortly")
            { RetryAfter = TimeSpan.FromSeconds(1) };
        }
        rt.Operation = operation;
        return rt;
    }

    private void ReleaseLifecycle(SandboxRuntime rt)
    {
        var op = rt.Operation;
        rt.Operation = null;
        if (op is "snapshot" or "branch" or "pause") _captureSlots.Release();
        rt.Lifecycle.Release();
    }

    /// <summary>
    /// Captures a running sandbox into a new published snapshot. The VM is stopped only inside
    /// the capturer's window; the sandbox continues on a fresh disk overlay.
    /// </summary>
    private async Task<SnapshotRecord> CaptureAsync(SandboxRuntime rt, string? tag, string kind, CancellationToken ct)
    {
        var source = rt.Record;
        var vm = rt.Vm!;
        var id = SnapshotNames.NewId();
        tag ??= SnapshotNames.AutoTag(source.Id, id);
        if (await _snapshots.GetByTagAsync(tag, ct) is not null)
            throw new BoughException(ErrorCodes.TagExists, $"tag '{tag}' is already used by another snapshot");

        // Lineage parent: this sandbox's previous snapshot, else the snapshot it started from.
        var previous = (await _snapshots.ListAsync(ct)).LastOrDefault(s => s.SourceSandboxId == source.Id && s.Kind != "compacted");
        var parentId = previous?.Id ?? source.SnapshotId;
        var parent = parentId is null ? null : await _snapshots.GetAsync(parentId, ct);
        var memoryOrigin = source.SnapshotId is null ? null : await _snapshots.GetAsync(source.SnapshotId, ct);

        var staging = StagingDir(id);
        var nextDisk = Path.Combine(source.RuntimeDir, $"disk-{id}.qcow2");
        var activeDisk = source.DiskPath ?? Path.Combine(source.RuntimeDir, "disk.qcow2");
        CaptureResult result;
        try
        {
            result = await new SnapshotCapturer(_loggers.CreateLogger<SnapshotCapturer>()).CaptureAsync(new CaptureRequest(
                vm, staging,
                VmMemoryFile: source.MemoryFile ?? Path.Combine(source.RuntimeDir, "memory"),
                MemoryBase: memoryOrigin is null ? null : new SnapshotRef(memoryOrigin.Id, memoryOrigin.Dir),
                ActiveDiskPath: activeDisk,
                NextDiskPath: nextDisk)
            {
                Parent = parent is null ? null : new SnapshotRef(parent.Id, parent.Dir),
            }, ct);
        }
        catch (Exception ex)
        {
            TryDeleteDirectory(staging);
            if (ex is OperationCanceledException && ct.IsCancellationRequested) throw;
            throw new BoughException(ErrorCodes.GuestError, $"capturing sandbox {source.Id} failed: {ex.Message}", ex);
        }

        // The VM now writes to nextDisk: record that before anything else.
        var updated = source with { DiskPath = nextDisk };
        await _store.UpdateAsync(updated, CancellationToken.None);
        rt.Record = updated;

        var record = new SnapshotRecord
        {
            Id = id, Tag = tag, ParentId = parent?.Id, SourceSandboxId = source.Id,
            Depth = (parent?.Depth ?? 0) + 1, Kind = kind, Image = source.Image,
            Vcpus = source.Vcpus, MemoryMiB = source.MemoryMiB,
            MemoryBytes = result.BytesStored,
            DiskBytes = FileSize(Path.Combine(staging, SnapshotFiles.Disk)),
            PauseMs = result.PauseMs,
            Dir = Path.Combine(_options.SnapshotsDir, id), CreatedAt = DateTimeOffset.UtcNow,
        };
        try
        {
            record = await PublishAsync(staging, record);
        }
        catch (TagTakenException ex)
        {
            TryDeleteDirectory(record.Dir);
            throw new BoughException(ErrorCodes.TagExists, ex.Message, ex);
        }

        // The running VM's new overlay names the frozen disk by its runtime-dir path; point it at
        // the published snapshot's (same inode) so the sandbox's disk chain no longer runs
        // through a file that only its runtime dir holds, then drop that extra name.
        try
        {
            await SnapshotCapturer.RepointActiveDiskAsync(vm, nextDisk, new SnapshotRef(record.Id, record.Dir), CancellationToken.None);
            if (!string.Equals(Path.GetFullPath(activeDisk), Path.GetFullPath(Path.Combine(record.Dir, SnapshotFiles.Disk)), StringComparison.Ordinal))
                TryDeleteFile(activeDisk);
        }
        catch (Exception ex) when (ex is SnapshotException or QmpException or IOException)
        {
            _log.LogWarning(ex, "could not repoint the disk of {Id} at snapshot {Snapshot}; keeping {Disk}", source.Id, record.Id, activeDisk);
        }
        return record;
    }

    /// <summary>Staging directory, then rename, then catalog row: a crash never shows a half snapshot.</summary>
    private async Task<SnapshotRecord> PublishAsync(string staging, SnapshotRecord record)
    {
        Directory.Move(staging, record.Dir);
        await _snapshots.InsertAsync(record, CancellationToken.None);
        return record;
    }

    private string StagingDir(string id)
    {
        var root = Path.Combine(_options.SnapshotsDir, ".staging");
        Directory.CreateDirectory(root);
        return Path.Combine(root, id);
    }

    private async Task<SnapshotRecord> ResolveSnapshotAsync(string idOrTag, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(idOrTag)) throw BoughException.Invalid("snapshot id or tag is required");
        var snap = (SnapshotNames.IsId(idOrTag) ? await _snapshots.GetAsync(idOrTag, ct) : null)
                   ?? await _snapshots.GetByTagAsync(idOrTag, ct);
        return snap ?? throw new BoughException(ErrorCodes.SnapshotNotFound, $"no snapshot with id or tag '{idOrTag}'");
    }

    private async Task<IReadOnlyList<Sandbox>> StartManyAsync(SnapshotRecord snap, int count, Func<int, ChildSpec> spec, CancellationToken ct)
    {
        var started = new Sandbox?[count];
        var errors = new List<Exception>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount * 2), CancellationToken = ct },
            async (i, token) =>
            {
                var id = SandboxId.New();
                var now = DateTimeOffset.UtcNow;
                var s = spec(i);
                var rt = new SandboxRuntime(new SandboxRecord
                {
                    Id = id, State = SandboxStates.Starting, Image = snap.Image, Vcpus = snap.Vcpus, MemoryMiB = snap.MemoryMiB,
                    CreatedAt = now, UpdatedAt = now, Metadata = s.Metadata, Env = s.Env,
                    Ports = s.Ports.Select(p => new PortRecord(p, 0)).ToList(), Internet = s.Internet,
                    Accel = _host.Accel.Accel, RuntimeDir = Path.Combine(_options.SandboxesDir, id), SnapshotId = snap.Id,
                    Template = s.Template,
                });
                await rt.Lifecycle.WaitAsync(token);
                rt.Operation = "create";
                _sandboxes[id] = rt;
                try
                {
                    await _store.InsertAsync(rt.Record, CancellationToken.None);
                    started[i] = await StartFromSnapshotAsync(rt, snap, s, isResume: false, token);
                }
                catch (Exception ex)
                {
                    lock (errors) errors.Add(ex);
                }
                finally { ReleaseLifecycle(rt); }
            });
        if (errors.Count > 0)
        {
            // All or nothing: a branch that half worked would leave the caller guessing.
            foreach (var sb in started.Where(s => s is not null))
                try { await DeleteAsync(sb!.Id, CancellationToken.None); } catch (Exception ex) { _log.LogWarning(ex, "cleanup of {Id}", sb!.Id); }
            var first = errors[0];
            if (first is OperationCanceledException && ct.IsCancellationRequested) throw first;
            throw first as BoughException ?? new BoughException(ErrorCodes.CreateFailed, first.Message, first);
        }
        return started.Select(s => s!).ToList();
    }

    /// <summary>
    /// Starts a VM from a snapshot for <paramref name="rt"/> (a new child, or a paused sandbox
    /// being resumed), connects its agent and makes the guest not a clone: fresh entropy,
    /// current wall clock, its own hostname, its own env. On failure everything is undone.
    /// </summary>
    private async Task<Sandbox> StartFromSnapshotAsync(SandboxRuntime rt, SnapshotRecord snap, ChildSpec spec, bool isResume, CancellationToken ct)
    {
        var id = rt.Id;
        var dir = rt.Record.RuntimeDir;
        var disk = Path.Combine(dir, $"disk-{SnapshotNames.NewId()[3..]}.qcow2");
        var snapRef = new SnapshotRef(snap.Id, snap.Dir);
        VmProcess? vm = null;
        try
        {
            Directory.CreateDirectory(dir);
            await SnapshotRestorer.CreateChildDiskAsync(snapRef, disk, ct);
            var sw = Stopwatch.StartNew();
            vm = await new SnapshotRestorer(_loggers.CreateLogger<SnapshotRestorer>()).RestoreAsync(_launcher, new VmSpec
            {
                Name = id,
                RuntimeDir = dir,
                KernelPath = _host.Kernel.KernelPath,
                InitrdPath = _host.Kernel.InitrdPath,
                KernelCmdline = _host.Kernel.CommandLine,
                DiskPath = disk,
                Vcpus = snap.Vcpus,
                MemoryMiB = snap.MemoryMiB,
                Accel = _host.Accel.Accel,
                Internet = spec.Internet,
                Ports = spec.Ports.Select(p => new PortForward(p, 0)).ToList(),
            }, snapRef, ct);
            rt.Vm = vm;
            var record = rt.Record with
            {
                Pid = vm.Pid,
                Ports = vm.Ports.Select(p => new PortRecord(p.GuestPort, p.HostPort)).ToList(),
                SnapshotId = snap.Id,
                MemoryFile = Path.Combine(snap.Dir, SnapshotFiles.Image),
                DiskPath = disk,
            };
            rt.Record = record;
            // A resume stays 'paused' in the catalog until it runs: a crash in between must
            // not turn a paused sandbox into an interrupted create (which recovery deletes).
            await _store.UpdateAsync(isResume ? record with { State = SandboxStates.Paused } : record, CancellationToken.None);

            var agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath,
                _loggers.CreateLogger("Bough.Agent." + id), TimeSpan.FromSeconds(60), ct);
            rt.Agent = agent;
            await ConfigureGuestAsync(agent, id, await _images.GetConfigAsync(snap.Image, ct), spec.Env, ct);

            record = record with { State = SandboxStates.Running, StateReason = null };
            rt.Record = record;
            await _store.UpdateAsync(record, CancellationToken.None);
            WatchExit(rt, vm);
            WatchAgentPort(rt, vm);
            _log.LogInformation("sandbox {Id} started from snapshot {Snapshot} in {Ms} ms", id, snap.Id, sw.ElapsedMilliseconds);
            return ToContract(record);
        }
        catch (Exception ex)
        {
            _log.LogWarning(ex, "starting {Id} from snapshot {Snapshot} failed", id, snap.Id);
            rt.Stopping = true;
            await DisposeRuntimeAsync(rt, vm);
            rt.Vm = null;
            TryDeleteFile(disk);
            if (isResume)
            {
                // The pause snapshot is intact: the sandbox simply stays paused.
                var back = rt.Record with { State = SandboxStates.Paused, Pid = null, StateReason = $"resume failed: {ex.Message}" };
                await _store.UpdateAsync(back, CancellationToken.None);
                rt.Record = back;
            }
            else
            {
                _sandboxes.TryRemove(new KeyValuePair<string, SandboxRuntime>(id, rt));
                await _store.DeleteAsync(id, CancellationToken.None);
                TryDeleteDirectory(dir);
            }
            if (ex is OperationCanceledException && ct.IsCancellationRequested) throw;
            throw new BoughException(ErrorCodes.CreateFailed,
                $"starting from snapshot {snap.Id} failed: {ex.Message}", ex);
        }
    }

    private static IReadOnlyDictionary<string, string> Merge(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b)
    {
        var d = new Dictionary<string, string>(a);
        foreach (var (k, v) in b) d[k] = v;
        return d;
    }

    private static long FileSize(string path)
    {
        try
        {
            // Allocated bytes matter for sparse files; fall back to the length.
            return new FileInfo(path).Length;
        }
        catch (IOException) { return 0; }
    }

    private void TryDeleteFile(string path)
    {
        try { File.Delete(path); } catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { _log.LogDebug(ex, "delete {Path}", path); }
    }

    private static Snapshot ToContract(SnapshotRecord s) => new()
    {
        Id = s.Id, Tag = s.Tag, ParentId = s.ParentId, SourceSandboxId = s.SourceSandboxId, Depth = s.Depth,
        Kind = s.Kind, Image = s.Image, Vcpus = s.Vcpus, MemoryMiB = s.MemoryMiB, MemoryBytes = s.MemoryBytes,
        DiskBytes = s.DiskBytes, PauseMs = s.PauseMs, CreatedAt = s.CreatedAt,
    };
}
