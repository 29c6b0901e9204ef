using System.Globalization;
using System.Text;

namespace Bough.Vmm;

/// <summary>
/// Builds the QEMU argv for a <see cref="VmSpec"/>. Pure (no I/O) so it can be unit-tested and
/// so the exact arguments can be written to <c>qemu.args</c> for debugging.
/// </summary>
public static class QemuCommandLine
{
    /// <summary>Name of the virtio-serial port the guest agent opens (visible in /sys/class/virtio-ports/*/name).</summary>
    public const string AgentPortName = "org.bough.agent";
    /// <summary>qdev id of the agent port; QMP VSERPORT_CHANGE events name it when the guest opens or closes the port.</summary>
    public const string AgentPortDeviceId = "agent0";
    /// <summary>The fd set the VM's disk is in (descriptors <see cref="DiskReadWriteFd"/> and <see cref="DiskReadOnlyFd"/> of the launcher).</summary>
    public const int DiskFdSet = 1;
    public const int DiskReadWriteFd = 3;
    public const int DiskReadOnlyFd = 4;

    /// <param name="spec">The VM description.</param>
    /// <param name="layout">Runtime file locations.</param>
    /// <param name="memoryFile">Absolute path of the RAM backing file.</param>
    /// <param name="ports">Port forwards with host ports already resolved (no zeros).</param>
    public static IReadOnlyList<string> Build(VmSpec spec, RuntimeDirLayout layout, string memoryFile, IReadOnlyList<PortForward> ports)
    {
        var args = new List<string>
        {
            "-M", "microvm",
            "-accel", spec.Accel == "tcg"
                ? string.Create(CultureInfo.InvariantCulture, $"tcg,tb-size={spec.TcgTranslationCacheMiB}")
                : spec.Accel,
            "-cpu", spec.Accel == "kvm" ? "host" : "max",
            "-m", spec.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-smp", spec.Vcpus.ToString(CultureInfo.InvariantCulture),
            "-no-reboot",
            "-nodefaults",
            "-no-user-config",
            "-display", "none",
            "-name", Escape(spec.Name),
            "-kernel", Path.GetFullPath(spec.KernelPath),
            "-initrd", Path.GetFullPath(spec.InitrdPath),
            "-append", spec.KernelCmdline,
            // Private mapping over an immutable file: guest writes become anonymous pages in
            // this process, which is what snapshots diff against.
            "-object", string.Create(CultureInfo.InvariantCulture,
                $"memory-backend-file,id=mem,size={spec.MemoryMiB}M,mem-path={Escape(memoryFile)},share=off"),
            "-machine", "memory-backend=mem",
            // A file chardev is readable while QEMU runs, and survives the daemon. Appending, so the daemon can
            // cut its head (ConsoleLogTrimmer) while QEMU writes on at the end.
            "-chardev", $"file,id=console,path={Escape(layout.ConsoleLog)},append=on",
            "-serial", "chardev:console",
            // The disk arrives as descriptors (QemuLaunchScript), one read-write and one read-only: once a capture
            // freezes it, QEMU reopens it read-only, which a jailed QEMU can only do from its fd set.
            "-add-fd", string.Create(CultureInfo.InvariantCulture,
                $"fd={DiskReadWriteFd},set={DiskFdSet},opaque={Escape(FdSets.ReadWriteOpaque(Path.GetFullPath(spec.DiskPath)))}"),
            "-add-fd", string.Create(CultureInfo.InvariantCulture,
                $"fd={DiskReadOnlyFd},set={DiskFdSet},opaque={Escape(FdSets.ReadOnlyOpaque(Path.GetFullPath(spec.DiskPath)))}"),
            "-blockdev", $"driver=qcow2,node-name=root,file.driver=file,file.filename={FdSets.PathOf(DiskFdSet)}",
            "-device", "virtio-blk-device,drive=root",
            "-device", "virtio-serial-device",
            "-chardev", $"socket,id=agent,path={Escape(layout.AgentSocket)},server=on,wait=off",
            "-device", $"virtserialport,chardev=agent,id={AgentPortDeviceId},name={AgentPortName}",
            "-netdev", BuildNetdev(spec.Internet, ports),
            "-device", "virtio-net-device,netdev=n0",
            // Equivalent to -qmp unix:PATH,server=on,wait=off, but via -chardev so the path is escaped.
            "-chardev", $"socket,id=qmp,path={Escape(layout.QmpSocket)},server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
            // Not -daemonize: QEMU installs its seccomp filter before daemonize's fork, which the filter then
            // kills. The launcher detaches it instead (QemuLaunchScript).
            "-pidfile", layout.PidFile,
            "-sandbox", SeccompPolicy,
        };
        if (spec.Confinement is { } jail)
        {
            // QEMU opens its files as root, then switches to this identity before the guest runs.
            args.Add("-runas");
            args.Add(string.Create(CultureInfo.InvariantCulture, $"{jail.Uid}:{jail.Gid}"));
        }
        args.AddRange(spec.ExtraArgs);
        return args;
    }

    /// <summary>
    /// QEMU's seccomp filter: no obsolete system calls, no new processes (restores load their state from a passed
    /// descriptor, never <c>exec:</c>), no scheduler or resource changes. <c>elevateprivileges</c> stays allowed
    /// because QEMU 7.2 installs the filter before it switches to the <c>-runas</c> user, and that switch is a
    /// set*id call (denied, the filter kills QEMU right there). Once switched, QEMU holds no capabilities, so a
    /// set*id call to any other identity fails anyway.
    /// </summary>
    public const string SeccompPolicy = "on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny";

    internal static string BuildNetdev(bool internet, IReadOnlyList<PortForward> ports)
    {
        // ipv6=off: the egress firewall speaks IPv4 only, so the guest gets no IPv6 path to go around it.
        var sb = new StringBuilder("user,id=n0,ipv6=off");
        if (!internet) sb.Append(",restrict=on");
        foreach (var p in ports)
            sb.Append(CultureInfo.InvariantCulture, $",hostfwd=tcp:127.0.0.1:{p.HostPort}-:{p.GuestPort}");
        return sb.ToString();
    }

    /// <summary>
    /// Recovers the resolved port forwards from a running QEMU's argv, so an adopted VM reports
    /// the same ports without any extra state file.
    /// </summary>
    public static IReadOnlyList<PortForward> ParsePortForwards(IEnumerable<string> argv)
    {
        var result = new List<PortForward>();
        string? previous = null;
        foreach (string arg in argv)
        {
            if (previous == "-netdev")
            {
                foreach (string part in arg.Split(','))
                {
                    // hostfwd=tcp:127.0.0.1:HOST-:GUEST
                    if (!part.StartsWith("hostfwd=tcp:", StringComparison.Ordinal)) continue;
                    string spec = part["hostfwd=tcp:".Length..];
                    int dash = spec.IndexOf('-');
                    if (dash < 0) continue;
                    string host = spec[..dash], guest = spec[(dash + 1)..];
                    if (int.TryParse(host[(host.LastIndexOf(':') + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int hp) &&
                        int.TryParse(guest[(guest.LastIndexOf(':') + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int gp))
                    {
                        result.Add(new PortForward(gp, hp));
                    }
                }
            }
            previous = arg;
        }
        return result;
    }

    /// <summary>QEMU option values escape a literal comma by doubling it.</summary>
    internal static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>Shell-quoted rendering of argv, for qemu.args (copy-paste to reproduce).</summary>
    public static string ToShellString(string binary, IEnumerable<string> args) =>
        string.Join(' ', new[] { binary }.Concat(args).Select(ShellQuote));

    private static string ShellQuote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? s
            : "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
