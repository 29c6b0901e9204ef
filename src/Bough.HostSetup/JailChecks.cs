namespace Bough.HostSetup;

/// <summary>
/// The <c>bough doctor</c> checks for jailing QEMU: cgroups (v2, or v1 with memory, cpu and pids), seccomp (kernel
/// filter support and QEMU's <c>-sandbox</c>) and the VM group. Read from the host directly, because HostSetup does
/// not see the VMM library that makes the cgroups.
/// </summary>
public static class JailChecks
{
    private static readonly string[] V1Controllers = ["memory", "cpu", "pids"];

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(CancellationToken ct, string cgroupRoot = "/sys/fs/cgroup")
    {
        return [CheckCgroups(cgroupRoot), await CheckSeccompAsync(ct).ConfigureAwait(false), CheckGroup()];
    }

    internal static CheckResult CheckCgroups(string root)
    {
        string controllers = Path.Combine(root, "cgroup.controllers");
        if (File.Exists(controllers))
        {
            var have = File.ReadAllText(controllers).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var missing = V1Controllers.Where(c => !have.Contains(c)).ToList();
            return missing.Count == 0
                ? new CheckResult("cgroups", true, "v2 (unified): memory, cpu, pids")
                : new CheckResult("cgroups", false, $"v2 without {string.Join(", ", missing)}: VMs cannot be bounded",
                    "enable the controllers (systemd: Delegate=yes for the bough unit)");
        }
        var absent = V1Controllers.Where(c => !File.Exists(Path.Combine(root, c, "cgroup.procs"))).ToList();
        return absent.Count == 0
            ? new CheckResult("cgroups", true, $"v1: {string.Join(", ", V1Controllers)} under {root}")
            : new CheckResult("cgroups", false, $"no usable cgroups (v1 lacks {string.Join(", ", absent)}): VMs cannot be bounded",
                "mount cgroup v2 at /sys/fs/cgroup, or the v1 memory, cpu and pids hierarchies");
    }

    internal static async Task<CheckResult> CheckSeccompAsync(CancellationToken ct)
    {
        if (!File.Exists("/proc/sys/kernel/seccomp/actions_avail"))
            return new CheckResult("seccomp", false, "the kernel has no seccomp filter support", "use a kernel with CONFIG_SECCOMP_FILTER");
        try
        {
            var r = await CommandRunner.RunAsync("qemu-system-x86_64", ["-help"],
                new CommandOptions { Timeout = TimeSpan.FromSeconds(20) }, ct).ConfigureAwait(false);
            return r.Stdout.Contains("-sandbox on", StringComparison.Ordinal)
                ? new CheckResult("seccomp", true, "kernel filter support; QEMU has -sandbox")
                : new CheckResult("seccomp", false, "QEMU was built without seccomp (-sandbox)", "install Debian's qemu-system-x86");
        }
        catch (Exception e) when (e is SetupException or TimeoutException or IOException)
        {
            return new CheckResult("seccomp", false, "could not ask QEMU: " + e.Message);
        }
    }

    internal static CheckResult CheckGroup() =>
        VmAccount.GroupId() is { } gid
            ? new CheckResult("vm group", true, $"{VmAccount.DefaultName} (gid {gid})")
            : new CheckResult("vm group", true, $"group {VmAccount.DefaultName} is missing: each VM runs with its uid as gid")
            {
                Warning = true,
            };
}
