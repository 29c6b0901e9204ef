using Bough.Catalog;
using Bough.Engine.BootSnapshots;
using Bough.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Snapshots;

/// <summary>
/// Collects snapshots nobody asked to keep once nothing depends on them, and evicts cached
/// memory images nobody maps.
/// </summary>
/// <remarks>
/// Collected (leaves first, repeatedly, so a chain folds up): implicit branch snapshots
/// (<see cref="SnapshotRecord.Keep"/> false: no tag given, no <c>keep</c>), pause snapshots
/// of sandboxes that no longer exist and stale boot snapshots (<see cref="BootShapes.IsStaleAsync"/>:
/// their image, kernel or agent changed, or they were retired), when <see cref="SnapshotUsage.IsUnused"/>.
/// Explicit, tagged, kept, template and compacted snapshots, and boot snapshots still current, are only
/// removed by a delete.
/// A snapshot's <c>memory.img</c> is only a cache for mapping (rebuilt from the layers on
/// demand): for pause snapshots it is evicted once no sandbox maps it.
/// Runs are serialised (<see cref="Lifecycle.LockOrder.SnapshotGc"/>); each claims what it removes through <see cref="SnapshotLeases"/>,
/// so it never races a child start.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim needs disposing only once its AvailableWaitHandle is used, which Bough never does; this lives as long as the daemon (or its sandbox).")]
internal sealed class SnapshotGc(SnapshotStore snapshots, SandboxStore sandboxes, TemplateStore templates,
    SnapshotLeases leases, SnapshotFilesystem files, BootShapes shapes, ILogger<SnapshotGc> log)
{
    private readonly SemaphoreSlim _running = new(1, 1);

    public async Task CollectAsync()
    {
        await _running.WaitAsync(CancellationToken.None);
        try
        {
            await CollectUnusedAsync();
            await EvictMemoryImagesAsync();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            log.LogWarning(ex, "snapshot garbage collection failed; it runs again after the next delete or pause");
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task CollectUnusedAsync()
    {
        while (true)
        {
            var snaps = await snapshots.ListAsync(CancellationToken.None);
            var boxes = await sandboxes.ListAsync(CancellationToken.None);
            var usage = new SnapshotUsage(snaps, boxes, await templates.ListAsync(CancellationToken.None));
            var alive = boxes.Select(b => b.Id).ToHashSet(StringComparer.Ordinal);
            var stale = new HashSet<string>(StringComparer.Ordinal);
            foreach (var boot in snaps.Where(s => s.Kind == SnapshotKind.Boot))
                if (await shapes.IsStaleAsync(boot, CancellationToken.None)) stale.Add(boot.Id);
            var candidate = snaps.FirstOrDefault(s => Collectable(s, alive, stale) && usage.IsUnused(s) && !leases.IsLeased(s.Id));
            if (candidate is null) return;
            using (var claim = leases.TryClaim([candidate.Id]))
            {
                if (claim is null) return; // a child start holds it: in use again
                // Re-read under the claim: a child that started and let go of its lease between
                // the read above and the claim is in the rows now.
                var recheck = new SnapshotUsage(await snapshots.ListAsync(CancellationToken.None),
                    await sandboxes.ListAsync(CancellationToken.None), await templates.ListAsync(CancellationToken.None));
                if (!recheck.IsUnused(candidate)) return;
                await files.RemoveAsync([candidate], candidate.Kind switch
                {
                    SnapshotKind.Pause => "pause snapshot of a deleted sandbox",
                    SnapshotKind.Boot => "boot snapshot of a shape no longer current, no longer used",
                    _ => "implicit branch snapshot no longer used",
                });
            }
        }
    }

    private static bool Collectable(SnapshotRecord s, HashSet<string> aliveSandboxes, HashSet<string> staleBoots) => s.Kind switch
    {
        SnapshotKind.Branch => !s.Keep,
        SnapshotKind.Pause => s.SourceSandboxId is null || !aliveSandboxes.Contains(s.SourceSandboxId),
        SnapshotKind.Boot => staleBoots.Contains(s.Id),
        _ => false,
    };

    private async Task EvictMemoryImagesAsync()
    {
        var boxes = await sandboxes.ListAsync(CancellationToken.None);
        foreach (var s in await snapshots.ListAsync(CancellationToken.None))
        {
            if (s.Kind != SnapshotKind.Pause) continue;
            if (boxes.Any(b => b.SnapshotId == s.Id || (b.MemoryFile is { } m && m.StartsWith(s.Dir + "/", StringComparison.Ordinal))))
                continue;
            var image = Path.Combine(s.Dir, SnapshotFiles.Image);
            if (!File.Exists(image)) continue;
            if (leases.RunIfIdle(s.Id, () => File.Delete(image)))
                log.LogDebug("evicted the memory image of {Id}", s.Id);
        }
    }
}
