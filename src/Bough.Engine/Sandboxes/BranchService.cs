using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Capture;
using Bough.Engine.Events;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Captures of running sandboxes (snapshot, branch, pause, template) and starts from
/// snapshots (children, resume). Lock order: the sandbox's lifecycle lease, then a capture
/// slot; children start after both are released, so the source keeps serving.
/// </summary>
internal sealed class BranchService(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, SnapshotStore snapshots, SnapshotLeases leases,
    CaptureSlots slots, CaptureOrchestrator capture, ChildStarter children, Boot.SandboxBooter booter, GuestChannel channel,
    SnapshotService snapshotService, SnapshotGc gc, EngineLifetime lifetime, Admission admission, Deadlines deadlines,
    EventBus events, ILogger<BranchService> log) : IBranchingService, ITemplateForks
{
    public Task<Snapshot> SnapshotAsync(string sandboxId, string? tag, CancellationToken ct)
    {
        SnapshotNames.ValidateTag(tag);
        return CaptureOnlyAsync(sandboxId, SandboxOperation.Snapshot, SnapshotKind.Snapshot, tag, ct);
    }

    public Task<Snapshot> CaptureTemplateAsync(string sandboxId, CancellationToken ct) =>
        CaptureOnlyAsync(sandboxId, SandboxOperation.Snapshot, SnapshotKind.Template, tag: null, ct);

    public async Task<BranchResult> BranchAsync(string sandboxId, BranchRequest request, CancellationToken requestAborted)
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
        // Children get the request's lifetime (or the daemon's default), not what is left of the
        // source's: a branch is new sandboxes. Their egress policy is the source's unless overridden.
        var childLifetime = Lifetime.Resolve(request.TimeoutSeconds, request.OnTimeout, options);
        var childNetwork = request.Network is { } n ? (Present: true, Rules: EgressValidation.Validate(n)) : (Present: false, Rules: null);

        using var linked = lifetime.Link(requestAborted);
        var ct = linked.Token;
        SnapshotRecord snap;
        SandboxRecord source;
        try
        {
            // Refused before the capture when the children cannot fit: nothing to undo then.
            var what = $"branch {count} {(count == 1 ? "child" : "children")} from {sandboxId}";
            using var room = registry.Get(sandboxId)?.Record is { } live ? admission.Reserve(count, live.MemoryMiB, what) : null;
            var keep = request.Tag is not null || request.Keep == true;
            (snap, source) = await CaptureUnderLeaseAsync(sandboxId, SandboxOperation.Branch, SnapshotKind.Branch, request.Tag, keep, ct);
            try
            {
                using var lateRoom = room is null ? admission.Reserve(count, snap.MemoryMiB, what) : null;
                var started = await children.StartAsync(snap, count, i => new ChildSpec(
                    Env: Merge(source.Env, perChild[i].Env), Metadata: perChild[i].Meta, Internet: request.Internet ?? source.Internet,
                    Ports: source.Ports.Select(p => p.GuestPort).ToList(), Lifetime: childLifetime,
                    Network: childNetwork.Present ? childNetwork.Rules : source.Network), (room ?? lateRoom)!, ct);
                return new BranchResult(ContractMapping.ToContract(snap), snap.PauseMs ?? 0, started);
            }
            catch (BoughException ex) when (snap.Keep)
            {
                // The capture itself succeeded and is kept: say so, so the caller can retry from it.
                throw new BoughException(ex.Code,
                    $"{ex.Message} (no children were kept; the snapshot {snap.Id} ({snap.Tag}) was, and " +
                    $"POST /v1/sandboxes {{\"snapshot\": \"{snap.Id}\"}} starts children from it)", ex) { RetryAfter = ex.RetryAfter };
            }
            finally
            {
                await gc.CollectAsync(); // an implicit snapshot whose children all failed goes now
            }
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    public Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, CancellationToken ct) =>
        CreateFromSnapshotAsync(request, template: null, ct);

    public async Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, string? template, CancellationToken requestAborted)
    {
        if (request.ColdBoot == true)
            throw BoughException.Invalid("coldBoot applies to creates from an image; 'snapshot' and 'template' always start from a snapshot");
        var snap = await snapshotService.ResolveAsync(request.Snapshot ?? throw BoughException.Invalid("snapshot is required"), requestAborted);
        var count = request.Count ?? 1;
        if (count < 1 || count > EngineOptions.MaxBranchCount)
            throw BoughException.Invalid($"count must be between 1 and {EngineOptions.MaxBranchCount} (got {count})");
        if (request.Vcpus is { } v && v != snap.Vcpus) throw BoughException.Invalid($"vcpus is fixed by the snapshot ({snap.Vcpus})");
        if (request.MemoryMiB is { } m && m != snap.MemoryMiB) throw BoughException.Invalid($"memoryMiB is fixed by the snapshot ({snap.MemoryMiB})");
        if (request.Image is { } img && img != snap.Image) throw BoughException.Invalid($"image is fixed by the snapshot ({snap.Image})");
        // The create validation covers env/metadata/ports.
        var spec = RequestValidation.ValidateCreate(request with
        {
            Snapshot = null, Count = null, Image = snap.Image, Vcpus = snap.Vcpus, MemoryMiB = snap.MemoryMiB,
        }, options);
        using var linked = lifetime.Link(requestAborted);
        try
        {
            using var room = admission.Reserve(count, snap.MemoryMiB,
                $"start {count} {(count == 1 ? "sandbox" : "sandboxes")} from snapshot {snap.Id}");
            return await children.StartAsync(snap, count,
                _ => new ChildSpec(spec.Env, spec.Metadata, spec.Internet, spec.Ports, spec.Lifetime, spec.Network, template), room, linked.Token);
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    public async Task<Sandbox> PauseAsync(string sandboxId, CancellationToken requestAborted) =>
        (await PauseIfAsync(sandboxId, onlyIf: null, requestAborted))!;

    /// <summary>
    /// <see cref="PauseAsync"/>, but only if <paramref name="onlyIf"/> still holds for the record
    /// seen under the lease (a deadline extended meanwhile no longer pauses).
    /// </summary>
    /// <returns>Null when the condition no longer held and nothing was done.</returns>
    internal async Task<Sandbox?> PauseIfAsync(string sandboxId, Func<SandboxRecord, bool>? onlyIf, CancellationToken requestAborted)
    {
        using var linked = lifetime.Link(requestAborted);
        var ct = linked.Token;
        try
        {
            await using var lease = await LeaseRunningAsync(sandboxId, SandboxOperation.Pause, ct);
            var rt = registry.Get(sandboxId)!;
            if (onlyIf is not null && !onlyIf(rt.Record)) return null;
            SnapshotRecord snap;
            using (await slots.AcquireAsync(ct))
                snap = await capture.CaptureAsync(lease, rt, tag: null, SnapshotKind.Pause, keep: true, ct);
            // The state is on disk: the VM can go. Persist 'paused' first, so a crash from here on
            // finds a paused sandbox (its leftover QEMU is killed by recovery).
            // Stopping first: from here on a VM exit is ours, not a crash. If the VM died during the
            // capture, the exit watcher has marked the sandbox dead already, and it stays dead.
            rt.Stopping = true;
            var record = await rt.UpdateAsync(store, r => r.State == SandboxState.Running
                ? r with
                {
                    State = SandboxState.Paused, StateReason = null, SnapshotId = snap.Id, Pid = null,
                    MemoryFile = null, DiskPath = null, // no VM maps or writes anything now
                    EndAt = null, // a paused sandbox does not time out; its resume starts a new lifetime
                }
                : throw BoughException.NotRunning($"cannot pause sandbox {rt.Id}: its VM exited during the pause ({r.StateReason ?? r.State.ToName()})"));
            events.SandboxState(record);
            await channel.CloseAsync(rt);
            await booter.StopVmAsync(rt.Id, rt.Vm, record.RuntimeDir);
            rt.Vm = null;
            registry.Remove(rt);
            // Files only the stopped VM used: its disks and its RAM file (a snapshot's memory image is the snapshot's).
            foreach (var f in Directory.EnumerateFiles(record.RuntimeDir, "disk*.qcow2")) TryDeleteFile(f);
            TryDeleteFile(Path.Combine(record.RuntimeDir, "memory"));
            log.LogInformation("sandbox {Id} paused into {Snapshot} ({PauseMs} ms stopped)", rt.Id, snap.Id, snap.PauseMs);
            await gc.CollectAsync();
            return ContractMapping.ToContract(record);
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    public Task<Sandbox> ResumeAsync(string sandboxId, CancellationToken ct) => ResumeAsync(sandboxId, null, ct);

    /// <summary>
    /// Restores a paused sandbox into the same id. It starts a new lifetime: the request's
    /// timeout, else the daemon's default; its onTimeout, else the sandbox's.
    /// </summary>
    public async Task<Sandbox> ResumeAsync(string sandboxId, ResumeRequest? request, CancellationToken requestAborted)
    {
        if (!SandboxId.IsWellFormed(sandboxId)) throw BoughException.NotFound(sandboxId);
        if (request?.TimeoutSeconds is { } seconds) Lifetime.Seconds(seconds, options, "timeoutSeconds");
        Lifetime.ParseAction(request?.OnTimeout, TimeoutAction.Kill);
        using var linked = lifetime.Link(requestAborted);
        var ct = linked.Token;
        try
        {
            await using var lease = await registry.AcquireAsync(sandboxId, SandboxOperation.Resume, options.BusyWait, ct);
            if (registry.Get(sandboxId) is { } live)
                throw BoughException.NotRunning($"sandbox {sandboxId} is {live.Record.State.ToName()}; only a paused sandbox can be resumed");
            var row = await store.GetAsync(sandboxId, ct) ?? throw BoughException.NotFound(sandboxId);
            if (row.State != SandboxState.Paused || row.SnapshotId is null)
                throw BoughException.NotRunning($"sandbox {sandboxId} is {row.State.ToName()}; only a paused sandbox can be resumed");
            using var snapLease = leases.Acquire(row.SnapshotId);
            var snap = await snapshots.GetAsync(row.SnapshotId, ct)
                       ?? throw new BoughException(ErrorCodes.SnapshotNotFound, $"the pause snapshot {row.SnapshotId} of {sandboxId} is missing");
            using var room = admission.Reserve(1, row.MemoryMiB, $"resume sandbox {sandboxId}");
            var rt = new SandboxRuntime(row with { State = SandboxState.Starting });
            registry.Set(lease, rt);
            room.Attach();
            await booter.RestoreAsync(lease, rt, snap, resume: true, ct);
            var sb = ContractMapping.ToContract(await deadlines.StartAsync(rt,
                Lifetime.Resolve(request?.TimeoutSeconds, request?.OnTimeout, options, fallback: row.OnTimeout)));
            log.LogInformation("sandbox {Id} resumed from {Snapshot}", sandboxId, snap.Id);
            return sb;
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    private async Task<Snapshot> CaptureOnlyAsync(string sandboxId, SandboxOperation op, SnapshotKind kind, string? tag, CancellationToken requestAborted)
    {
        using var linked = lifetime.Link(requestAborted);
        try
        {
            var (snap, _) = await CaptureUnderLeaseAsync(sandboxId, op, kind, tag, keep: true, linked.Token);
            return ContractMapping.ToContract(snap);
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    private async Task<(SnapshotRecord Snap, SandboxRecord Source)> CaptureUnderLeaseAsync(string sandboxId, SandboxOperation op,
        SnapshotKind kind, string? tag, bool keep, CancellationToken ct)
    {
        await using var lease = await LeaseRunningAsync(sandboxId, op, ct);
        var rt = registry.Get(sandboxId)!;
        using var slot = await slots.AcquireAsync(ct);
        var snap = await capture.CaptureAsync(lease, rt, tag, kind, keep, ct);
        return (snap, rt.Record);
    }

    /// <summary>The lifecycle lease of a sandbox that must be running (waits <see cref="EngineOptions.BusyWait"/>, then 409).</summary>
    private async Task<LifecycleLease> LeaseRunningAsync(string id, SandboxOperation op, CancellationToken ct)
    {
        if (!registry.TryGet(id, out _))
        {
            var row = SandboxId.IsWellFormed(id) ? await store.GetAsync(id, ct) : null;
            if (row is null) throw BoughException.NotFound(id);
            throw BoughException.NotRunning($"cannot {op.ToVerb()} sandbox {id}: it is {row.State.ToName()}");
        }
        var lease = await registry.AcquireAsync(id, op, options.BusyWait, ct);
        var rt = registry.Get(id);
        if (rt is null || rt.Stopping || rt.Record.State != SandboxState.Running || rt.Vm is null)
        {
            var state = rt?.Record.State.ToName() ?? (await store.GetAsync(id, ct))?.State.ToName() ?? "gone";
            await lease.DisposeAsync();
            throw BoughException.NotRunning($"cannot {op.ToVerb()} sandbox {id}: it is {state}");
        }
        return lease;
    }

    private static Dictionary<string, string> Merge(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b)
    {
        var d = new Dictionary<string, string>(a);
        foreach (var (k, v) in b) d[k] = v;
        return d;
    }

    private void TryDeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogDebug(ex, "delete {Path}", path); }
    }
}
