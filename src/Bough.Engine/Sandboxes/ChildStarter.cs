using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Events;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>What differs between the children of one snapshot.</summary>
internal sealed record ChildSpec(IReadOnlyDictionary<string, string> Env, IReadOnlyDictionary<string, string> Metadata,
    bool Internet, IReadOnlyList<int> Ports, Lifetime Lifetime, EgressRules? Network, string? Template = null);

/// <summary>
/// Starts N sandboxes from one snapshot, in parallel, all or nothing: if any fails, or the
/// caller goes away, or the daemon shuts down, every child already started is deleted again,
/// so nobody is left with sandboxes whose ids they never got.
/// </summary>
internal sealed class ChildStarter(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, SnapshotStore snapshots, SnapshotLeases leases,
    SandboxBooter booter, VmSpecFactory specs, SandboxDeleter deleter, Deadlines deadlines, EventBus events, ILogger<ChildStarter> log)
{
    /// <param name="room">Admission for all <paramref name="count"/> children, reserved by the caller (a branch does so before its capture).</param>
    public async Task<IReadOnlyList<Sandbox>> StartAsync(SnapshotRecord snap, int count, Func<int, ChildSpec> spec, AdmissionTicket room,
        CancellationToken ct)
    {
        // The lease keeps the snapshot (and its memory image) alive until every child's row names it.
        using var lease = leases.Acquire(snap.Id);
        snap = await snapshots.GetAsync(snap.Id, ct)
               ?? throw new BoughException(ErrorCodes.SnapshotNotFound, $"snapshot {snap.Id} was deleted");
        var started = new Sandbox?[count];
        var errors = new List<Exception>();
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = options.ChildStartParallelism(specs.Accel), CancellationToken = ct },
                async (i, token) =>
                {
                    try { started[i] = await StartOneAsync(snap, spec(i), room, token); }
                    catch (Exception ex)
                    {
                        lock (errors) errors.Add(ex);
                    }
                });
        }
        catch (OperationCanceledException ex)
        {
            lock (errors) errors.Add(ex);
        }
        if (errors.Count == 0 && !ct.IsCancellationRequested) return started.Select(s => s!).ToList();

        // All or nothing: a branch that half worked would leave the caller guessing.
        await Task.WhenAll(started.Where(s => s is not null).Select(async sb =>
        {
            try { await deleter.DeleteIfAsync(sb!.Id, onlyIf: null, CancellationToken.None); }
            catch (BoughException ex) { log.LogWarning(ex, "cleanup of {Id}", sb!.Id); }
        }));
        var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.FirstOrDefault();
        if (ct.IsCancellationRequested) throw first as OperationCanceledException ?? new OperationCanceledException(ct);
        throw first as BoughException ?? new BoughException(ErrorCodes.CreateFailed, first!.Message, first);
    }

    private async Task<Sandbox> StartOneAsync(SnapshotRecord snap, ChildSpec s, AdmissionTicket room, CancellationToken ct)
    {
        var id = SandboxId.New();
        var now = DateTimeOffset.UtcNow;
        var rt = new SandboxRuntime(new SandboxRecord
        {
            Id = id, State = SandboxState.Starting, Image = snap.Image, Vcpus = snap.Vcpus, MemoryMiB = snap.MemoryMiB,
            CreatedAt = now, UpdatedAt = now, Metadata = s.Metadata, Env = s.Env,
            Ports = s.Ports.Select(p => new PortRecord(p, 0)).ToList(), Internet = s.Internet,
            Accel = specs.Accel, RuntimeDir = Path.Combine(options.SandboxesDir, id), SnapshotId = snap.Id, Template = s.Template,
            EndAt = s.Lifetime.EndAt(deadlines.Now), OnTimeout = s.Lifetime.OnTimeout, Network = s.Network,
            Boot = BootMode.Restored,
        });
        await using var lease = await registry.AcquireAsync(id, SandboxOperation.Create, wait: null, ct);
        registry.Set(lease, rt);
        room.Attach();
        await store.InsertAsync(rt.Record, CancellationToken.None);
        events.SandboxCreated(rt.Record);
        await booter.RestoreAsync(lease, rt, snap, resume: false, ct);
        return ContractMapping.ToContract(await deadlines.StartAsync(rt, s.Lifetime));
    }
}
