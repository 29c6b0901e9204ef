using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.Events;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Recovery;

/// <summary>
/// Takes the engine down: first signals every in-flight operation to end (before the web
/// server drains), then stops every VM (graceful shutdown) or lets go of them so the next
/// daemon adopts them (<see cref="EngineOptions.StopSandboxesOnShutdown"/> false).
/// </summary>
internal sealed class ShutdownCoordinator(
    EngineOptions options, EngineLifetime lifetime, SandboxRegistry registry, SandboxStore store, GuestChannel channel,
    SandboxBooter booter, VmUids uids, IVmLauncher launcher, VmSpecFactory specs, EventBus events, ILogger<ShutdownCoordinator> log)
{
    public void BeginShutdown() => lifetime.BeginShutdown();

    /// <summary>Deliberately ignores cancellation: leaving VMs half-stopped is worse than a slow exit.</summary>
    public async Task ShutdownAsync()
    {
        lifetime.BeginShutdown();
        await Parallel.ForEachAsync(registry.Runtimes, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (rt, _) =>
        {
            await using var lease = await registry.AcquireAsync(rt.Id, SandboxOperation.Shutdown, wait: null, CancellationToken.None);
            try
            {
                if (registry.Get(rt.Id) != rt) return; // deleted or paused meanwhile
                await channel.CloseAsync(rt);
                if (options.StopSandboxesOnShutdown)
                {
                    await booter.StopVmAsync(rt.Id, rt.Vm, rt.Record.RuntimeDir);
                    if (rt.Record.State == SandboxState.Running)
                    {
                        await store.SetStateAsync(rt.Id, SandboxState.Stopped, "the daemon shut down", CancellationToken.None);
                        events.SandboxState(rt.Record with { State = SandboxState.Stopped, StateReason = "the daemon shut down" });
                    }
                }
                else if (rt.Vm is { } vm)
                {
                    await vm.DisposeAsync(); // detaches; QEMU keeps running
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                log.LogWarning(ex, "error stopping sandbox {Id}", rt.Id);
            }
        });
        registry.Clear();
        // Every VM is gone: so are their cgroups, and this data directory's cgroup parent with them, and their rules.
        if (options.StopSandboxesOnShutdown)
        {
            await launcher.RemoveLeftoversAsync(specs.CgroupParent, new HashSet<string>(), CancellationToken.None);
            await uids.CloseAsync();
        }
    }
}
