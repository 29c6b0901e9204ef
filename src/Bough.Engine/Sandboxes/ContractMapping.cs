using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Sandboxes;

/// <summary>Catalog rows → API shapes, in one place.</summary>
internal static class ContractMapping
{
    public static Sandbox ToContract(SandboxRecord r) => new(
        r.Id, r.State.ToName(), r.Image, r.Vcpus, r.MemoryMiB, r.CreatedAt,
        r.Metadata, r.Ports.Select(p => new PortMapping(p.GuestPort, p.HostPort)).ToList(),
        r.Internet, r.Accel, r.StateReason, r.Pid, r.SnapshotId, r.Template,
        r.EndAt, Lifetime.ToName(r.OnTimeout), EgressValidation.ToContract(r.Network),
        // Rows from before the boot mode was recorded: a sandbox started from a snapshot names it (until it pauses).
        (r.Boot ?? (r.SnapshotId is null ? BootMode.Cold : BootMode.Restored)).ToName());

    public static Snapshot ToContract(SnapshotRecord s) => new()
    {
        Id = s.Id, Tag = s.Tag, ParentId = s.ParentId, SourceSandboxId = s.SourceSandboxId, Depth = s.Depth,
        Kind = s.Kind.ToName(), Image = s.Image, Vcpus = s.Vcpus, MemoryMiB = s.MemoryMiB, MemoryBytes = s.MemoryBytes,
        DiskBytes = s.DiskBytes, PauseMs = s.PauseMs, CreatedAt = s.CreatedAt, Keep = s.Keep,
    };
}
