namespace Bough.Engine.Lifecycle;

/// <summary>
/// The engine's locks in the only order they may be taken: while holding one, take only locks
/// that come later here, never an earlier one, and never two of the same level (two sandboxes,
/// two image names). Global locks are held only for short reservation or publication steps.
/// Each lock's type names its level; docs/ARCHITECTURE.md repeats this as a table.
/// </summary>
/// <remarks>
/// Not locks, so not here: <see cref="Snapshots.SnapshotLeases"/> and image leases are counters
/// that never wait (a claim that would have to wait fails instead), and the catalog serialises
/// its own writes (SQLite WAL, busy timeout).
/// </remarks>
public enum LockOrder
{
    /// <summary><c>ImageLocks</c>: an image name, for a publish's digest re-check and row write, a delete's in-use check, a boot taking its lease.</summary>
    ImageName = 1,

    /// <summary><see cref="SandboxRegistry"/>: one sandbox's lifecycle lease, for a whole create, delete, capture, pause, resume or shutdown of it.</summary>
    SandboxLifecycle = 2,

    /// <summary><see cref="CaptureSlots"/>: one of the daemon-wide capture slots, for the capture itself.</summary>
    CaptureSlot = 3,

    /// <summary><see cref="Snapshots.SnapshotGc"/>: one collection run at a time.</summary>
    SnapshotGc = 4,

    /// <summary><see cref="Lifecycle.Admission"/>: counting committed memory and reserving room (reads runtimes' records).</summary>
    Admission = 5,

    /// <summary><see cref="SandboxRuntime.AgentGate"/>: while (re)connecting or closing one sandbox's agent channel.</summary>
    AgentGate = 6,

    /// <summary><see cref="SandboxRuntime"/>'s record lock and write gate: one record change and its catalog write.</summary>
    RecordWrite = 7,
}
