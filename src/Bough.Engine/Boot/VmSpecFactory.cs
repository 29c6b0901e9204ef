using System.Security.Cryptography;
using System.Text;
using Bough.Catalog;
using Bough.Engine.Setup;
using Bough.HostSetup;
using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Boot;

/// <summary>
/// The one place a sandbox record becomes a QEMU <see cref="VmSpec"/> (kernel, accel, shape, disk, network, jail).
/// </summary>
internal sealed class VmSpecFactory(PreparedHost host, EngineOptions engine, ILogger<VmSpecFactory> log)
{
    /// <summary>Translation cache per TCG VM (<see cref="VmSpec.TcgTranslationCacheMiB"/>), counted in its memory limit.</summary>
    private readonly int _tcgCacheMiB = TcgCacheOverride(Environment.GetEnvironmentVariable(VmJailOptions.TcgCacheVariable))
                                        ?? engine.Jail.TcgTranslationCacheMiB;

    private readonly Lazy<int?> _gid = new(() => ResolveGid(engine.Jail, log));

    public string Accel => host.Accel.Accel;
    public string AccelReason => host.Accel.Reason;

    /// <summary>The jail settings in force.</summary>
    public VmJailOptions Jail => engine.Jail;

    /// <summary>
    /// The cgroup (relative to the daemon's own) that this daemon's VM cgroups are made in: one per data directory,
    /// so two daemons on one host never take each other's for leftovers.
    /// </summary>
    public string CgroupParent { get; } = "bough-" + Convert.ToHexStringLower(
        SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(engine.DataDir))))[..12];

    /// <summary>The spec for <paramref name="sandbox"/>'s VM; its uid must be allocated (<see cref="SandboxRecord.VmUid"/>).</summary>
    /// <exception cref="InvalidOperationException">The record has no VM uid: QEMU is never started without its jail.</exception>
    public VmSpec For(SandboxRecord sandbox, string diskPath)
    {
        int uid = sandbox.VmUid ?? throw new InvalidOperationException($"sandbox {sandbox.Id} has no VM uid allocated");
        return new()
        {
            Name = sandbox.Id,
            RuntimeDir = sandbox.RuntimeDir,
            KernelPath = host.Kernel.KernelPath,
            InitrdPath = host.Kernel.InitrdPath,
            KernelCmdline = host.GuestCommandLine,
            DiskPath = diskPath,
            Vcpus = sandbox.Vcpus,
            MemoryMiB = sandbox.MemoryMiB,
            Accel = host.Accel.Accel,
            Internet = sandbox.Internet,
            Ports = sandbox.Ports.Select(p => new PortForward(p.GuestPort, 0)).ToList(),
            TcgTranslationCacheMiB = _tcgCacheMiB,
            ConsoleLogMaxBytes = (long)Jail.ConsoleLogMaxMiB << 20,
            Confinement = new VmConfinement(uid, _gid.Value ?? uid)
            {
                CgroupParent = CgroupParent,
                Limits = Jail.Cgroups ? LimitsFor(sandbox) : null,
            },
        };
    }

    /// <summary>Memory: guest RAM + the stated overhead (+ the translation cache under TCG); CPU: its vCPUs; pids: the option.</summary>
    internal CgroupLimits LimitsFor(SandboxRecord sandbox)
    {
        long mib = sandbox.MemoryMiB + Jail.MemoryOverheadMiB + (host.Accel.Accel == "tcg" ? _tcgCacheMiB : 0);
        return new CgroupLimits(mib << 20, sandbox.Vcpus, Jail.PidsMax);
    }

    /// <summary>The value of <see cref="VmJailOptions.TcgCacheVariable"/> when it is a usable size, else null.</summary>
    internal static int? TcgCacheOverride(string? value) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int mib) && mib is >= 1 and <= 2048
            ? mib
            : null;

    private static int? ResolveGid(VmJailOptions options, ILogger log)
    {
        int? gid = VmAccount.GroupId(options.Group);
        if (gid is null)
            log.LogWarning("group {Group} does not exist (run 'bough setup'); each VM runs with its uid as its gid", options.Group);
        return gid;
    }
}
