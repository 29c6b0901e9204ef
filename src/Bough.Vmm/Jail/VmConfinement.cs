namespace Bough.Vmm;

/// <summary>
/// The jail of one QEMU: the unprivileged identity it switches to once it has opened its files (<c>-runas</c>), and
/// the cgroup that bounds its memory, CPU and processes.
/// </summary>
/// <param name="Uid">Numeric user id QEMU runs as after start-up; never 0.</param>
/// <param name="Gid">Numeric group id QEMU runs as (its only group).</param>
public sealed record VmConfinement(int Uid, int Gid)
{
    /// <summary>Limits of the VM's own cgroup; null starts QEMU without one.</summary>
    public CgroupLimits? Limits { get; init; }

    /// <summary>
    /// The group the VM's cgroup is made in, relative to the daemon's own cgroup: the VM's cgroup is
    /// <c>&lt;own&gt;/&lt;CgroupParent&gt;/&lt;VM name&gt;</c>. One parent per data directory keeps two daemons on
    /// one host from removing each other's cgroups at start-up.
    /// </summary>
    public string CgroupParent { get; init; } = "bough";
}

/// <summary>What one VM's cgroup allows.</summary>
/// <param name="MemoryBytes">Hard memory limit (guest RAM plus QEMU's own overhead); above it the kernel reclaims, then kills QEMU.</param>
/// <param name="Cpus">CPU bandwidth in whole CPUs (its vCPUs): a quota of <c>Cpus</c> × the period.</param>
/// <param name="PidsMax">Most tasks (threads) QEMU may have.</param>
public sealed record CgroupLimits(long MemoryBytes, int Cpus, int PidsMax);
