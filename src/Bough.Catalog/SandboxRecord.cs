namespace Bough.Catalog;

/// <summary>A published host port for a guest port (HostPort 0 = not yet assigned).</summary>
public sealed record PortRecord(int GuestPort, int HostPort);

/// <summary>
/// One sandbox row. Immutable: change it with <c>with</c> and write it back with
/// <see cref="SandboxStore.UpdateAsync"/>.
/// </summary>
public sealed record SandboxRecord
{
    public required string Id { get; init; }
    public required SandboxState State { get; init; }
    public string? StateReason { get; init; }
    public required string Image { get; init; }
    public int Vcpus { get; init; } = 1;
    public int MemoryMiB { get; init; } = 256;
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<PortRecord> Ports { get; init; } = [];
    public bool Internet { get; init; } = true;
    public required string Accel { get; init; }
    /// <summary>QEMU PID while a VM runs; informational only (identity is re-checked on adoption).</summary>
    public int? Pid { get; init; }
    public required string RuntimeDir { get; init; }
    /// <summary>The snapshot this sandbox was started from or paused into (null: booted from an image).</summary>
    public string? SnapshotId { get; init; }
    /// <summary>The file the VM's RAM maps privately (a sparse zero file, or a snapshot's memory image).</summary>
    public string? MemoryFile { get; init; }
    /// <summary>The qcow2 overlay the VM writes to now.</summary>
    public string? DiskPath { get; init; }
    /// <summary>The template this sandbox was forked from (null: not from a template).</summary>
    public string? Template { get; init; }
    /// <summary>The unprivileged uid its QEMU runs as (null while no VM runs); keys its firewall rules.</summary>
    public int? VmUid { get; init; }
    /// <summary>When its lifetime ends (null: no deadline).</summary>
    public DateTimeOffset? EndAt { get; init; }
    /// <summary>What happens at <see cref="EndAt"/>.</summary>
    public TimeoutAction OnTimeout { get; init; } = TimeoutAction.Kill;
    /// <summary>Egress rules beyond <see cref="Internet"/> (null: none).</summary>
    public EgressRules? Network { get; init; }
    /// <summary>How its VM first came up (null only in rows written before this was recorded).</summary>
    public BootMode? Boot { get; init; }
}

/// <summary>What a sandbox's deadline does.</summary>
public enum TimeoutAction
{
    Kill,
    Pause,
}

/// <summary>CIDRs a sandbox may (AllowOut) or may not (DenyOut) reach, on top of the rules no sandbox can change.</summary>
public sealed record EgressRules(IReadOnlyList<string> AllowOut, IReadOnlyList<string> DenyOut);
