namespace Bough.Engine.Boot;

/// <summary>
/// How each sandbox's QEMU is jailed: the unprivileged uid range it runs in, the group, its cgroup limits and the
/// console cap. Defaults suit a single-machine install.
/// </summary>
public sealed class VmJailOptions
{
    /// <summary>First uid of the range VM uids come from (far above any real user's).</summary>
    public int UidBase { get; set; } = DefaultUidBase;

    /// <summary>How many uids the range has: at most this many VMs at once.</summary>
    public int UidCount { get; set; } = 65_536;

    /// <summary>Where the host-wide lock on a uid range lives (tmpfs: a reboot, which ends every VM, clears it).</summary>
    public string RangeLockDir { get; set; } = "/run/bough";

    /// <summary>The default <see cref="UidBase"/>.</summary>
    public const int DefaultUidBase = 1_900_000_000;

    /// <summary>
    /// The nftables table holding this range's rules: <c>bough</c> for the default range, <c>bough_BASE</c> otherwise, so
    /// two daemons on one host (each with its own range) never rebuild each other's rules.
    /// </summary>
    public string FirewallTable => UidBase == DefaultUidBase ? "bough" : $"bough_{UidBase}";

    /// <summary>The group every VM runs in (made by <c>bough setup</c>); when missing, each VM's gid is its uid.</summary>
    public string Group { get; set; } = "bough-vm";

    /// <summary>Put each VM in its own cgroup with the limits below (off only on hosts without usable cgroups).</summary>
    public bool Cgroups { get; set; } = true;

    /// <summary>Memory a VM's cgroup allows beyond guest RAM (and, under TCG, the translation cache): QEMU itself, its I/O buffers, the page cache it faults in.</summary>
    public int MemoryOverheadMiB { get; set; } = 192;

    /// <summary>
    /// TCG translation cache per VM (QEMU <c>tb-size</c>, <see cref="Bough.Vmm.VmSpec.TcgTranslationCacheMiB"/>); counted in
    /// its cgroup's memory limit, ignored under KVM. The environment variable <see cref="TcgCacheVariable"/> overrides it
    /// (a tuning knob for benchmarks, read once when the engine starts).
    /// </summary>
    public int TcgTranslationCacheMiB { get; set; } = DefaultTcgTranslationCacheMiB;

    /// <summary>The default <see cref="TcgTranslationCacheMiB"/> (docs/benchmarks.md, "Idle children and tb-size").</summary>
    public const int DefaultTcgTranslationCacheMiB = 64;

    /// <summary>Overrides <see cref="TcgTranslationCacheMiB"/> when set to a number.</summary>
    public const string TcgCacheVariable = "BOUGH_TCG_CACHE_MIB";

    /// <summary>Most tasks (threads) one QEMU may have.</summary>
    public int PidsMax { get; set; } = 256;

    /// <summary>console.log keeps the last this many MiB.</summary>
    public int ConsoleLogMaxMiB { get; set; } = 8;

    /// <summary>Checks the settings once at start-up.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"jail option {what}");
        }
        Require(UidBase >= 65_536, "UidBase must be at least 65536 (above real users and system accounts)");
        Require(UidCount >= 1 && (long)UidBase + UidCount <= int.MaxValue, "UidCount must be at least 1 and the range must end below 2^31");
        Require(!string.IsNullOrWhiteSpace(Group), "Group must be set");
        Require(MemoryOverheadMiB >= 64, "MemoryOverheadMiB must be at least 64");
        Require(TcgTranslationCacheMiB is >= 1 and <= 2048, "TcgTranslationCacheMiB must be between 1 and 2048");
        Require(PidsMax >= 64, "PidsMax must be at least 64");
        Require(ConsoleLogMaxMiB >= 1, "ConsoleLogMaxMiB must be at least 1");
    }
}
