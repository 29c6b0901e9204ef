using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.Events;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Deletes a sandbox in any state. Its own type (not only <see cref="SandboxService"/>'s) because the child starter
/// undoes half-started groups with it, and the sandbox service starts creates through the child starter.
/// </summary>
internal sealed class SandboxDeleter(
    SandboxRegistry registry, SandboxStore store, SandboxBooter booter, GuestChannel channel, SnapshotGc gc, EventBus events, ILogger<SandboxDeleter> log)
{
    /// <summary>
    /// Under the id's lifecycle lease, so it waits for a pause or resume in progress and then acts on what that
    /// left (a running VM, or a paused row); only if <paramref name="onlyIf"/> (when given) still holds for the
    /// record seen under the lease (a deadline that was extended meanwhile no longer kills).
    /// </summary>
    /// <returns>False when the condition no longer held and nothing was deleted.</returns>
    public async Task<bool> DeleteIfAsync(string id, Func<SandboxRecord, bool>? onlyIf, CancellationToken ct)
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
            events.SandboxState(row with { State = SandboxState.Stopping, StateReason = "deleting" });
            if (rt is not null) await channel.CloseAsync(rt);
            await booter.StopVmAsync(id, rt?.Vm, row.RuntimeDir);
            TryDeleteDirectory(row.RuntimeDir);
            await store.DeleteAsync(id, CancellationToken.None);
            events.SandboxDeleted(id, "deleted");
            if (rt is not null) registry.Remove(rt);
            log.LogInformation("sandbox {Id} deleted", id);
        }
        await gc.CollectAsync();
        return true;
    }

    private void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove {Dir}", dir); }
    }
}
