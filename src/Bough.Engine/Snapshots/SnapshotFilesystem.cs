using Bough.Catalog;
using Bough.Engine.Events;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Snapshots;

/// <summary>
/// Where snapshots live on disk and how they appear and disappear: staging directory, then
/// rename, then catalog row (a crash never shows a half snapshot); removal is row first, then
/// files (a crash leaves a directory without a row, which start-up removes).
/// </summary>
internal sealed class SnapshotFilesystem(EngineOptions options, SnapshotStore store, EventBus events, ILogger<SnapshotFilesystem> log)
{
    public string DirFor(string id) => Path.Combine(options.SnapshotsDir, id);

    public string NewStagingDir(string id)
    {
        var root = Path.Combine(options.SnapshotsDir, ".staging");
        Directory.CreateDirectory(root);
        return Path.Combine(root, id);
    }

    public async Task<SnapshotRecord> PublishAsync(string staging, SnapshotRecord record)
    {
        Directory.Move(staging, record.Dir);
        try
        {
            await store.InsertAsync(record, CancellationToken.None);
        }
        catch
        {
            TryDeleteDirectory(record.Dir);
            throw;
        }
        events.SnapshotCreated(record);
        return record;
    }

    /// <summary>Removes snapshots given parents first, in reverse (leaves first), so a crash half-way never leaves a child without its parent.</summary>
    public async Task RemoveAsync(IReadOnlyList<SnapshotRecord> parentsFirst, string why)
    {
        foreach (var s in Enumerable.Reverse(parentsFirst))
        {
            await store.DeleteAsync(s.Id, CancellationToken.None);
            events.SnapshotDeleted(s.Id, why);
            TryDeleteDirectory(s.Dir);
            log.LogInformation("removed snapshot {Id} ({Why})", s.Id, why);
        }
    }

    /// <summary>Removes capture staging dirs and snapshot dirs that never got their catalog row (start-up).</summary>
    public void RemoveUnpublished(IReadOnlyList<SnapshotRecord> published)
    {
        if (!Directory.Exists(options.SnapshotsDir)) return;
        TryDeleteDirectory(Path.Combine(options.SnapshotsDir, ".staging"));
        var known = published.Select(s => Path.GetFullPath(s.Dir)).ToHashSet(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(options.SnapshotsDir))
        {
            if (known.Contains(Path.GetFullPath(dir))) continue;
            log.LogWarning("removing {Dir}: a snapshot directory without a catalog row (interrupted publish)", dir);
            TryDeleteDirectory(dir);
        }
    }

    public void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove {Dir}", dir); }
    }

    public static long FileSize(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (IOException) { return 0; }
    }
}
