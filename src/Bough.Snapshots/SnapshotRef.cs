using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bough.Snapshots;

/// <summary>
/// A published snapshot: directory <see cref="Dir"/> holding <see cref="SnapshotFiles"/>.
/// Snapshots that share memory layers must live side by side in one parent directory, each in a
/// directory named by its id, because a header names ancestor layers by id only (so snapshot
/// directories can be moved together, and a staging directory can be renamed into place).
/// </summary>
public sealed record SnapshotRef(string Id, string Dir)
{
    /// <summary>Directory of the snapshot called <paramref name="id"/>: a sibling of this one.</summary>
    public string SiblingDir(string id) =>
        Path.Combine(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Dir)))!, id);

    internal void ValidateLayout()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Id);
        if (!SnapshotFiles.IsValidId(Id)) throw new ArgumentException($"Snapshot id '{Id}' is not a valid directory name.");
        if (Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Dir))) != Id)
            throw new ArgumentException($"Snapshot directory '{Dir}' must be named by its id '{Id}' (ancestor layers are found as siblings).");
        if (!File.Exists(Path.Combine(Dir, SnapshotFiles.Metadata)))
            throw new SnapshotException($"{Dir} is not a published snapshot ({SnapshotFiles.Metadata} missing).");
    }
}

/// <summary>File names inside a snapshot directory.</summary>
public static class SnapshotFiles
{
    /// <summary>4 KiB pages this snapshot stores itself, concatenated; page slot s is at offset s*4096. No header.</summary>
    public const string Layer = "memory.layer";
    /// <summary>Page table: for every guest page, which layer (this one, an ancestor's, or none = zero) holds it. See <see cref="MemoryHeader"/>.</summary>
    public const string Header = "memory.header";
    /// <summary>Full guest RAM image (sparse; zero pages are holes), mapped <c>share=off</c> by restored VMs. Derived from the layers; immutable once published.</summary>
    public const string Image = "memory.img";
    /// <summary>Device state from QMP <c>xen-save-devices-state</c> (no RAM).</summary>
    public const string DeviceState = "device.state";
    /// <summary>The frozen disk layer (qcow2; its backing is the previous layer or the base image).</summary>
    public const string Disk = "disk.qcow2";
    /// <summary><see cref="SnapshotMetadata"/> as JSON; written last, so its presence marks a complete snapshot.</summary>
    public const string Metadata = "snapshot.json";

    internal static bool IsValidId(string id) =>
        id.Length is > 0 and <= 200 && id != "." && id != ".." && id.IndexOfAny(['/', '\0']) < 0;
}

/// <summary>Contents of <c>snapshot.json</c>.</summary>
public sealed record SnapshotMetadata
{
    public int FormatVersion { get; init; } = 1;
    /// <summary>Guest RAM size; a restore must use exactly this (<c>-m</c>).</summary>
    public required int MemoryMiB { get; init; }
    /// <summary>vCPU count; device state contains one CPU state per vCPU, so a restore must match (<c>-smp</c>).</summary>
    public required int Vcpus { get; init; }
    /// <summary>Accelerator of the captured VM (<c>tcg</c>/<c>kvm</c>) when known; CPU state does not move between them.</summary>
    public string? Accel { get; init; }
    public int PageSize { get; init; } = GuestRamMapping.PageSize;
    public required long PageCount { get; init; }
    /// <summary>Pages copied out of the VM at capture: written since the previous capture (<see cref="Tracking"/> =
    /// <c>written-pages</c>) or held privately by QEMU, i.e. written since it mapped its memory file (<c>full-scan</c>).</summary>
    public long ChangedPages { get; init; }
    /// <summary>Pages written into this snapshot's own <c>memory.layer</c>.</summary>
    public long StoredPages { get; init; }
    /// <summary>Changed pages that were all zero (not stored; holes in memory.img).</summary>
    public long ZeroPages { get; init; }
    /// <summary>Changed pages identical to the parent's page at the same index (not stored; the header points at the parent's copy).</summary>
    public long DedupedPages { get; init; }
    /// <summary>Size of this snapshot's memory.layer.</summary>
    public long BytesStored { get; init; }
    /// <summary>Non-zero pages of the whole image (this layer and ancestors').</summary>
    public long NonZeroPages { get; init; }
    /// <summary>How long the source VM was stopped.</summary>
    public long PauseMs { get; init; }
    /// <summary>
    /// How the capture found its pages (<see cref="Tracking.CaptureMethods"/>): <c>written-pages</c> (only those written since
    /// the parent was captured from the same VM; the memory is a layer over the parent's) or <c>full-scan</c> (every page
    /// QEMU held privately; a layer over the memory the VM started from). Null in snapshots from before tracking.
    /// </summary>
    public string? Tracking { get; init; }
    /// <summary>
    /// Names this capture's memory state. The source VM's write tracker remembers it, and the next capture whose parent
    /// carries it may copy only the pages written since. Null in snapshots from before tracking.
    /// </summary>
    public string? CaptureToken { get; init; }
    /// <summary>The snapshot this one descends from (lineage and dedup), or null.</summary>
    public string? ParentId { get; init; }
    /// <summary>Lineage, nearest first (parent, grandparent, ...).</summary>
    public IReadOnlyList<string> AncestorIds { get; init; } = [];
    /// <summary>Ancestor snapshots whose <c>memory.layer</c> this snapshot's header refers to (its own layer not included).</summary>
    public IReadOnlyList<string> LayerIds { get; init; } = [];
    /// <summary>Set on a compacted copy: the snapshot it was made from. Such a snapshot references no other files.</summary>
    public string? CompactedFrom { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static SnapshotMetadata Read(string snapshotDir)
    {
        string path = Path.Combine(snapshotDir, SnapshotFiles.Metadata);
        try
        {
            return JsonSerializer.Deserialize<SnapshotMetadata>(File.ReadAllText(path), Json)
                   ?? throw new SnapshotException($"{path} is empty.");
        }
        catch (JsonException e)
        {
            throw new SnapshotException($"{path} is not valid snapshot metadata: {e.Message}", e);
        }
    }

    internal void Write(string snapshotDir)
    {
        string path = Path.Combine(snapshotDir, SnapshotFiles.Metadata);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(fs, this, Json);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>A snapshot operation failed; the message says why. The source VM was left running.</summary>
public class SnapshotException : Exception
{
    public SnapshotException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A capture failed after the VM had already switched to its new disk overlay (the VM runs on, but
/// on <see cref="ActiveDiskPath"/>, whose backing file is the old overlay). The caller must record the
/// new active disk even though no snapshot was produced.
/// </summary>
public sealed class SnapshotCaptureException : SnapshotException
{
    public SnapshotCaptureException(string message, bool diskSwitched, string activeDiskPath, Exception? inner = null)
        : base(message, inner)
    {
        DiskSwitched = diskSwitched;
        ActiveDiskPath = activeDiskPath;
    }

    /// <summary>True when blockdev-snapshot-sync had completed: the VM now writes to the new overlay.</summary>
    public bool DiskSwitched { get; }
    /// <summary>The disk file the VM writes to now.</summary>
    public string ActiveDiskPath { get; }
}
