using Bough.Vmm;

namespace Bough.Snapshots;

/// <summary>
/// Makes a standalone copy of a snapshot: one memory layer holding every non-zero page, a header that
/// refers only to itself, and the disk chain flattened into one qcow2 without a backing file. The copy
/// shares no file with its ancestors, so they can be deleted, and it can be moved or shipped alone.
/// </summary>
public static class MemoryCompactor
{
    private const int PageSize = GuestRamMapping.PageSize;

    /// <summary>
    /// Writes the compacted copy of <paramref name="source"/> into <paramref name="stagingDir"/> (created if
    /// missing, must be empty); the caller renames it into place. The source is only read.
    /// </summary>
    public static async Task CompactAsync(SnapshotRef source, string stagingDir, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        source.ValidateLayout();
        string staging = Path.GetFullPath(stagingDir);
        if (File.Exists(staging)) throw new ArgumentException($"Staging path {staging} is a file.");
        Directory.CreateDirectory(staging);
        if (Directory.EnumerateFileSystemEntries(staging).Any()) throw new ArgumentException($"Staging directory {staging} is not empty.");

        var meta = SnapshotMetadata.Read(source.Dir);
        var header = MemoryHeader.Read(Path.Combine(source.Dir, SnapshotFiles.Header));

        // Disk first (the slow part, a separate process), then memory.
        try
        {
            await QemuImg.FlattenAsync(Path.Combine(source.Dir, SnapshotFiles.Disk), Path.Combine(staging, SnapshotFiles.Disk), ct)
                .ConfigureAwait(false);
        }
        catch (QemuImgException e)
        {
            throw new SnapshotException($"Could not flatten the disk of snapshot {source.Id}: {e.Message}", e);
        }
        NativeFs.FSyncPath(Path.Combine(staging, SnapshotFiles.Disk));
        File.Copy(Path.Combine(source.Dir, SnapshotFiles.DeviceState), Path.Combine(staging, SnapshotFiles.DeviceState));
        NativeFs.FSyncPath(Path.Combine(staging, SnapshotFiles.DeviceState));

        var compact = new MemoryHeader(header.PageCount, []);
        long stored = 0;
        using (var layers = new MemoryImage.LayerSet(source, header))
        using (var layer = File.OpenHandle(Path.Combine(staging, SnapshotFiles.Layer), FileMode.CreateNew, FileAccess.Write))
        using (var img = File.OpenHandle(Path.Combine(staging, SnapshotFiles.Image), FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(img, header.PageCount * PageSize);
            var buffer = new byte[1 << 20];
            Exception? error = null;
            MemoryImage.ForEachRun(header, (page, ordinal, slot, count) =>
            {
                if (error is not null) return;
                if (ct.IsCancellationRequested) { error = new OperationCanceledException(ct); return; }
                var span = buffer.AsSpan(0, count * PageSize);
                GuestRamMapping.ReadExactly(layers.Get(ordinal), span, (long)slot * PageSize, layers.PathOf(ordinal));
                RandomAccess.Write(layer, span, stored * PageSize);
                RandomAccess.Write(img, span, page * PageSize);
                for (int k = 0; k < count; k++)
                {
                    compact.Ordinals[page + k] = MemoryHeader.OwnOrdinal;
                    compact.Slots[page + k] = checked((uint)(stored + k));
                }
                stored += count;
            });
            if (error is not null) throw error;
            NativeFs.FSync(layer);
            NativeFs.FSync(img);
        }
        compact.Write(Path.Combine(staging, SnapshotFiles.Header));

        (meta with
        {
            StoredPages = stored,
            BytesStored = stored * PageSize,
            NonZeroPages = stored,
            ChangedPages = 0,
            ZeroPages = 0,
            DedupedPages = 0,
            PauseMs = 0,
            LayerIds = [],
            // Not a capture: no VM's write tracking starts from it.
            Tracking = null,
            CaptureToken = null,
            CompactedFrom = source.Id,
            CreatedAt = DateTimeOffset.UtcNow,
        }).Write(staging);
        NativeFs.FSyncPath(staging, directory: true);
    }
}
