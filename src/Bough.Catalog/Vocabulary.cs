namespace Bough.Catalog;

/// <summary>
/// Where a sandbox is in its life. Stored (and sent on the wire) as the lower-case name.
/// The engine's transition table (<c>Bough.Engine.Lifecycle.SandboxTransitions</c>) says
/// which changes are legal; the catalog only persists them.
/// </summary>
public enum SandboxState
{
    /// <summary>Row written, VM being booted or restored; a crash here means "remove it".</summary>
    Starting,
    Running,
    /// <summary>A delete is under way; a crash here means "finish the delete".</summary>
    Stopping,
    /// <summary>Stopped with the daemon; disk kept until deleted.</summary>
    Stopped,
    /// <summary>The VM process went away without being asked to.</summary>
    Dead,
    /// <summary>VM process gone; memory, devices and disk kept in its pause snapshot.</summary>
    Paused,
}

/// <summary>Why a snapshot exists; decides who may delete it and when it is collected.</summary>
public enum SnapshotKind
{
    /// <summary>Asked for explicitly (POST /snapshots): kept until deleted.</summary>
    Snapshot,
    /// <summary>Made by a branch: collected with its last user unless tagged or kept.</summary>
    Branch,
    /// <summary>A paused sandbox's state: goes with the sandbox.</summary>
    Pause,
    /// <summary>A template's warm state: goes with the template.</summary>
    Template,
    /// <summary>A standalone copy made by compaction.</summary>
    Compacted,
    /// <summary>
    /// An image booted up to its agent and captured before any sandbox's identity: creates of the same
    /// shape restore from it. Collected once its shape is out of date (image, kernel or agent changed)
    /// and nothing depends on it.
    /// </summary>
    Boot,
}

/// <summary>How a sandbox's VM first came up.</summary>
public enum BootMode
{
    /// <summary>Its image's kernel booted.</summary>
    Cold,
    /// <summary>Restored from a snapshot (its image's boot snapshot, a branch, a snapshot or a template).</summary>
    Restored,
}

/// <summary>The text form of the vocabulary, as stored in SQLite and sent on the wire.</summary>
public static class CatalogNames
{
    public static string ToName(this SandboxState s) => s switch
    {
        SandboxState.Starting => "starting",
        SandboxState.Running => "running",
        SandboxState.Stopping => "stopping",
        SandboxState.Stopped => "stopped",
        SandboxState.Dead => "dead",
        SandboxState.Paused => "paused",
        _ => throw new ArgumentOutOfRangeException(nameof(s), s, null),
    };

    public static string ToName(this SnapshotKind k) => k switch
    {
        SnapshotKind.Snapshot => "snapshot",
        SnapshotKind.Branch => "branch",
        SnapshotKind.Pause => "pause",
        SnapshotKind.Template => "template",
        SnapshotKind.Compacted => "compacted",
        SnapshotKind.Boot => "boot",
        _ => throw new ArgumentOutOfRangeException(nameof(k), k, null),
    };

    public static string ToName(this BootMode b) => b switch
    {
        BootMode.Cold => "cold",
        BootMode.Restored => "restored",
        _ => throw new ArgumentOutOfRangeException(nameof(b), b, null),
    };

    public static BootMode ParseBootMode(string s) =>
        Enum.GetValues<BootMode>().Where(v => v.ToName() == s).Select(v => (BootMode?)v).FirstOrDefault()
        ?? throw new FormatException($"unknown boot mode '{s}' in the catalog");

    public static SandboxState ParseSandboxState(string s) =>
        Enum.GetValues<SandboxState>().Where(v => v.ToName() == s).Select(v => (SandboxState?)v).FirstOrDefault()
        ?? throw new FormatException($"unknown sandbox state '{s}' in the catalog");

    public static SnapshotKind ParseSnapshotKind(string s) =>
        Enum.GetValues<SnapshotKind>().Where(v => v.ToName() == s).Select(v => (SnapshotKind?)v).FirstOrDefault()
        ?? throw new FormatException($"unknown snapshot kind '{s}' in the catalog");
}
