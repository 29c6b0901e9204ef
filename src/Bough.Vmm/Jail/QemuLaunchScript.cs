using System.Globalization;

namespace Bough.Vmm;

/// <summary>
/// The argv that starts QEMU detached from the daemon, inside its cgroups. Pure, so it can be tested and read.
/// </summary>
/// <remarks>
/// <para>A short <c>/bin/sh</c> (the daemon's child, reaped at once) starts <c>setsid /bin/sh -c ...</c> in the
/// background and prints its pid. That inner shell, in a session of its own and with stdio on the log file,
/// writes its pid into each cgroup's <c>cgroup.procs</c> (so QEMU is bounded before it allocates guest RAM) and
/// opens the VM's disk twice as descriptors 3 (read-write) and 4 (read-only), which QEMU takes as fd set
/// <see cref="QemuCommandLine.DiskFdSet"/>, sets <c>LD_PRELOAD</c> to the write-tracking library when one is given
/// (<see cref="Tracking.UffdPreload"/>: only this QEMU loads it, not the shells), and then <c>exec</c>s QEMU: the printed
/// pid is QEMU's, and QEMU is not the daemon's child, so it survives a daemon that is killed. (A background job of a
/// non-interactive shell is no process group leader, so <c>setsid</c> does not fork again.)</para>
/// <para>Paths and QEMU's arguments are passed as positional parameters, never spliced into the script.</para>
/// </remarks>
internal static class QemuLaunchScript
{
    public const string Shell = "/bin/sh";

    /// <summary>Exit status of the inner shell when it could not join a cgroup (QEMU never ran).</summary>
    public const int JoinFailedExit = 125;

    private const string Outer =
        "log=$1; shift\n" +
        "setsid /bin/sh -c '" + Inner + "' bough-vm \"$@\" </dev/null >\"$log\" 2>&1 &\n" +
        "echo $!\n";

    private const string Inner =
        "n=$1; shift\n" +
        "while [ \"$n\" -gt 0 ]; do\n" +
        "  echo $$ > \"$1\" || { echo \"bough: could not join cgroup $1\" >&2; exit 125; }\n" +
        "  shift; n=$((n-1))\n" +
        "done\n" +
        "exec 3<>\"$1\" 4<\"$1\" || exit 125\n" +
        "shift\n" +
        "if [ -n \"$1\" ]; then LD_PRELOAD=$1; export LD_PRELOAD; fi\n" +
        "shift\n" +
        "exec \"$@\"";

    /// <summary>Arguments for <see cref="Shell"/>.</summary>
    /// <param name="logFile">QEMU's stdout and stderr (truncated).</param>
    /// <param name="cgroupProcsFiles">The <c>cgroup.procs</c> files to join, in order.</param>
    /// <param name="diskPath">The VM's disk, handed to QEMU as descriptors 3 and 4.</param>
    /// <param name="preloadLibrary">Absolute path of the library QEMU is started with (<c>LD_PRELOAD</c>), or null.</param>
    /// <param name="qemuBinary">The QEMU executable.</param>
    /// <param name="qemuArgs">QEMU's arguments.</param>
    public static IReadOnlyList<string> Arguments(string logFile, IReadOnlyList<string> cgroupProcsFiles, string diskPath,
        string? preloadLibrary, string qemuBinary, IReadOnlyList<string> qemuArgs) =>
    [
        "-c", Outer, "bough-launch", logFile,
        cgroupProcsFiles.Count.ToString(CultureInfo.InvariantCulture), .. cgroupProcsFiles,
        diskPath, preloadLibrary ?? "", qemuBinary, .. qemuArgs,
    ];
}
