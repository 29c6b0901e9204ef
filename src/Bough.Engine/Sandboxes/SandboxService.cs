using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>Create (cold boot), list, show and delete sandboxes; exec and files go to <see cref="GuestOperations"/>.</summary>
internal sealed class SandboxService(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, IBootImages images, SandboxBooter booter,
    GuestChannel channel, GuestOperations guest, SnapshotGc gc, EngineLifetime lifetime, VmSpecFactory specs,
    Admission admission, Deadlines deadlines, ILogger<SandboxService> log) : ISandboxService
{
    public EngineInfo Info { get; } = new(specs.Accel, specs.AccelReason, options.DataDir);

    public async Task<Sandbox> CreateAsync(CreateSandboxRequest request, CancellationToken requestAborted)
    {
        var spec = RequestValidation.ValidateCreate(request, options);
        using var linked = lifetime.Link(requestAborted);
        var ct = linked.Token;
        try
        {
            using var room = admission.Reserve(1, spec.MemoryMiB, "create a sandbox");
            // The image lease keeps the image from being deleted until this sandbox's row names it.
            using var image = await images.AcquireAsync(spec.Image, ct);
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
            };
            await using var lease = await registry.AcquireAsync(id, SandboxOperation.Create, wait: null, ct);
            var rt = new SandboxRuntime(record);
            registry.Set(lease, rt);
            room.Attach();
            // The row goes in before anything is started, so a daemon killed mid-create finds it
            // (state 'starting') and cleans up whatever the runtime dir holds.
            await store.InsertAsync(record, CancellationToken.None);
            await booter.BootAsync(lease, rt, image, ct);
            return ContractMapping.ToContract(await deadlines.StartAsync(rt, spec.Lifetime));
        }
        catch (Exception ex) when (lifetime.Explain(ex, requestAborted) is var explained && explained != ex)
        {
            throw explained;
        }
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

    /// <summary>
    /// Deletes a sandbox in any state. Under the id's lifecycle lease, so it waits for a pause
    /// or resume in progress and then acts on what that left: a running VM, or a paused row.
    /// </summary>
    public async Task DeleteAsync(string id, CancellationToken ct) => await DeleteIfAsync(id, onlyIf: null, ct);

    /// <summary>
    /// <see cref="DeleteAsync"/>, but only if <paramref name="onlyIf"/> still holds for the record
    /// seen under the lease (a deadline that was extended meanwhile no longer kills).
    /// </summary>
    /// <returns>False when the condition no longer held and nothing was deleted.</returns>
    internal async Task<bool> DeleteIfAsync(string id, Func<SandboxRecord, bool>? onlyIf, CancellationToken ct)
    {
        if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);
        await using (var lease = await registry.AcquireAsync(id, SandboxOperation.Delete, wait: null, ct))
        {
            var rt = registry.Get(id);
            var row = rt?.Record ?? await store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
            if (onlyIf is not null && !onlyIf(row)) return false;
            if (rt is not null)
            {
                rt.Stopping = true;
                rt.Update(r => r with { State = SandboxState.Stopping });
            }
            // Persist the intent first: a daemon killed half-way finishes the delete on restart.
            await store.SetStateAsync(id, SandboxState.Stopping, "deleting", CancellationToken.None);
            if (rt is not null) await channel.CloseAsync(rt);
            await booter.StopVmAsync(id, rt?.Vm, row.RuntimeDir);
            TryDeleteDirectory(row.RuntimeDir);
            await store.DeleteAsync(id, CancellationToken.None);
            if (rt is not null) registry.Remove(rt);
            log.LogInformation("sandbox {Id} deleted", id);
        }
        await gc.CollectAsync();
        return true;
    }

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

    private void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove {Dir}", dir); }
    }
}
