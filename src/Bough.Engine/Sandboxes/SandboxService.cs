using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.BootSnapshots;
using Bough.Engine.Guest;
using Bough.Engine.Events;
using Bough.Engine.Lifecycle;
using Bough.Vmm;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Create, list, show and delete sandboxes; exec and files go to <see cref="GuestOperations"/>. A create from an
/// image restores from the boot snapshot of its shape when there is one (through <see cref="ChildStarter"/>, the
/// path every start from a snapshot takes) and boots cold otherwise (<see cref="BootSnapshotService"/>).
/// </summary>
internal sealed class SandboxService(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, IBootImages images, SandboxBooter booter,
    GuestOperations guest, EngineLifetime lifetime, VmSpecFactory specs, Admission admission, Deadlines deadlines,
    BootSnapshotService bootSnapshots, ChildStarter children, SandboxDeleter deleter, EventBus events) : ISandboxService
{
    public EngineInfo Info { get; } = new(specs.Accel, specs.AccelReason, options.DataDir);

    public async Task<Sandbox> CreateAsync(CreateSandboxRequest request, CancellationToken requestAborted)
    {
        if (request.Snapshot is not null || request.Template is not null)
            throw BoughException.Invalid("this create boots an image; 'snapshot' and 'template' start from snapshots instead");
        var spec = RequestValidation.ValidateCreate(request, options);
        using var linked = lifetime.Link(requestAborted);
        var ct = linked.Token;
        try
        {
            using var room = admission.Reserve(1, spec.MemoryMiB, "create a sandbox");
            // The image lease keeps the image from being deleted until this sandbox's row names it.
            using var image = await images.AcquireAsync(spec.Image, ct);
            using var plan = await bootSnapshots.PlanAsync(image, spec.Vcpus, spec.MemoryMiB, request.ColdBoot == true, ct);
            if (plan.From is not { } boot) return await BootColdAsync(spec, image, plan, room, ct);
            try
            {
                var started = await children.StartAsync(boot, 1, _ => new ChildSpec(spec.Env, spec.Metadata, spec.Internet, spec.Ports,
                    spec.Lifetime, spec.Network), room, ct);
                return started[0];
            }
            catch (BoughException ex) when (!ct.IsCancellationRequested && IsRestoreFailure(ex))
            {
                // A boot snapshot must never make a create fail that a cold boot would pass: boot cold instead, and
                // take a snapshot that does not restore out of use (the next create publishes a fresh one).
                if (ex.Code == ErrorCodes.CreateFailed) await bootSnapshots.RetireAsync(boot, ex);
                using var retryRoom = admission.Reserve(1, spec.MemoryMiB, "create a sandbox");
                using var cold = bootSnapshots.ColdPlan(plan.Key!);
                return await BootColdAsync(spec, image, cold, retryRoom, ct);
            }
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
    }

    /// <summary>
    /// A start from a boot snapshot that failed because of the snapshot (gone, or its VM did not come up), not
    /// because the guest refused this sandbox's identity (an agent that answered with an error, e.g. an image's
    /// User that does not resolve): that would fail a cold boot just the same, and must not retire the snapshot.
    /// </summary>
    private static bool IsRestoreFailure(BoughException ex) =>
        ex.Code == ErrorCodes.SnapshotNotFound
        || (ex.Code == ErrorCodes.CreateFailed && ex.InnerException is not AgentClient.AgentException { Code: not ErrorCodes.AgentUnavailable });

    /// <summary>Boots the image; when <paramref name="plan"/> publishes, the VM is captured into the shape's boot snapshot before its identity is applied.</summary>
    private async Task<Sandbox> BootColdAsync(RequestValidation.CreateSpec spec, IBootImageLease image, BootPlan plan,
        AdmissionTicket room, CancellationToken ct)
    {
        var id = SandboxId.New();
        var dir = Path.Combine(options.SandboxesDir, id);
        var now = DateTimeOffset.UtcNow;
        var record = new SandboxRecord
        {
            Id = id, State = SandboxState.Starting, Image = image.Name, Vcpus = spec.Vcpus, MemoryMiB = spec.MemoryMiB,
            CreatedAt = now, UpdatedAt = now, Metadata = spec.Metadata, Env = spec.Env,
            Ports = spec.Ports.Select(p => new PortRecord(p, 0)).ToList(), Internet = spec.Internet,
            Accel = specs.Accel, RuntimeDir = dir, MemoryFile = Path.Combine(dir, "memory"), DiskPath = Path.Combine(dir, "disk.qcow2"),
            // Set now so that the row always carries its deadline; restarted once it runs.
            EndAt = spec.Lifetime.EndAt(deadlines.Now), OnTimeout = spec.Lifetime.OnTimeout, Network = spec.Network,
            Boot = BootMode.Cold,
        };
        await using var lease = await registry.AcquireAsync(id, SandboxOperation.Create, wait: null, ct);
        var rt = new SandboxRuntime(record);
        registry.Set(lease, rt);
        room.Attach();
        // The row goes in before anything is started, so a daemon killed mid-create finds it
        // (state 'starting') and cleans up whatever the runtime dir holds.
        await store.InsertAsync(record, CancellationToken.None);
        events.SandboxCreated(record);
        await booter.BootAsync(lease, rt, image,
            plan.Publishes ? token => bootSnapshots.TryPublishAsync(lease, rt, image.Config, plan.Key!, token) : null, ct);
        return ContractMapping.ToContract(await deadlines.StartAsync(rt, spec.Lifetime));
    }

    public async Task<IReadOnlyList<Sandbox>> ListAsync(CancellationToken ct) =>
        (await store.ListAsync(ct)).Select(r => ContractMapping.ToContract(registry.Get(r.Id)?.Record ?? r)).ToList();

    public async Task<Sandbox> GetAsync(string id, CancellationToken ct)
    {
        if (registry.TryGet(id, out var rt)) return ContractMapping.ToContract(rt.Record);
        if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);
        var row = await store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
        return ContractMapping.ToContract(row);
    }

    /// <summary>Deletes a sandbox in any state (<see cref="SandboxDeleter"/>).</summary>
    public async Task DeleteAsync(string id, CancellationToken ct) => await deleter.DeleteIfAsync(id, onlyIf: null, ct);

    /// <summary><see cref="DeleteAsync"/>, but only if <paramref name="onlyIf"/> still holds for the record seen under the lease.</summary>
    /// <returns>False when the condition no longer held and nothing was deleted.</returns>
    internal Task<bool> DeleteIfAsync(string id, Func<SandboxRecord, bool>? onlyIf, CancellationToken ct) => deleter.DeleteIfAsync(id, onlyIf, ct);

    /// <summary>Buffered exec; like the streamed form it ends at shutdown, or the server would wait for it to drain.</summary>
    public async Task<ExecResult> ExecAsync(string id, ExecCommand command, CancellationToken ct)
    {
        using var linked = lifetime.Link(ct);
        return await guest.ExecAsync(id, command, linked.Token);
    }

    public async IAsyncEnumerable<ExecOutput> ExecStreamAsync(string id, ExecCommand command,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken requestAborted)
    {
        using var linked = lifetime.Link(requestAborted);
        await foreach (var item in guest.ExecStreamAsync(id, command, linked.Token)) yield return item;
    }

    public Task WriteFileAsync(string id, string path, Stream content, CancellationToken ct) => guest.WriteFileAsync(id, path, content, ct);
    public Task<GuestFile> OpenFileAsync(string id, string path, CancellationToken ct) => guest.OpenFileAsync(id, path, ct);
    public Task DeleteFileAsync(string id, string path, CancellationToken ct) => guest.DeleteFileAsync(id, path, ct);
    public Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, CancellationToken ct) => guest.ListFilesAsync(id, path, ct);

    public async Task<Stream> OpenConsoleLogAsync(string id, CancellationToken ct)
    {
        var sb = await GetAsync(id, ct);
        return ConsoleLog.Open(registry.Get(id)?.Record.RuntimeDir ?? Path.Combine(options.SandboxesDir, sb.Id));
    }

    /// <summary>
    /// The published port, or a <c>hostfwd_add</c> on the VM's netdev (<c>n0</c>) to a loopback port picked
    /// free just before; another process can take it in between, so a refused rule is tried again on a new port.
    /// </summary>
    public async Task<int> ForwardPortAsync(string id, int guestPort, CancellationToken ct)
    {
        if (guestPort is < 1 or > 65535) throw BoughException.Invalid($"guest port {guestPort} is not in 1..65535");
        if (!registry.TryGet(id, out var rt))
        {
            await GetAsync(id, ct); // unknown: sandbox_not_found
            throw BoughException.NotRunning($"sandbox {id} is not running");
        }
        var record = rt.Record;
        if (record.State != SandboxState.Running || rt.Vm is not QemuVm { IsAlive: true } vm)
            throw BoughException.NotRunning($"sandbox {id} is {record.State.ToString().ToLowerInvariant()}, not running");
        if (record.Ports.FirstOrDefault(p => p.GuestPort == guestPort && p.HostPort > 0) is { } published)
            return published.HostPort;
        string reply = "";
        for (int attempt = 0; attempt < 3; attempt++)
        {
            int hostPort;
            using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                probe.Start();
                hostPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            }
            reply = await vm.Process.Qmp.HumanMonitorCommandAsync(
                $"hostfwd_add n0 tcp:127.0.0.1:{hostPort}-:{guestPort}", ct);
            if (string.IsNullOrWhiteSpace(reply)) return hostPort;
        }
        throw new BoughException(ErrorCodes.Internal, $"QEMU refused a forward to guest port {guestPort}: {reply.Trim()}");
    }
}
