using System.Globalization;
using Bough.Vmm.Tracking;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>
/// Starts QEMU microVMs detached from the daemon (they outlive it), jailed (<see cref="VmConfinement"/>) and under
/// QEMU's seccomp filter. A start either returns a fully attached <see cref="VmProcess"/> (QMP connected, identity
/// verified, written-page tracking armed when possible) or throws and leaves no QEMU process and no cgroup behind.
/// </summary>
public sealed class VmLauncher
{
    private const int MaxPortAttempts = 3;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CgroupRemoveWait = TimeSpan.FromSeconds(2);

    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly string _qemuBinary;
    private readonly Lazy<CgroupTree> _cgroups;

    /// <param name="lf">Loggers.</param>
    /// <param name="qemuBinary">The QEMU executable.</param>
    /// <param name="cgroups">Where VM cgroups are made; null detects this host's on first use.</param>
    public VmLauncher(ILoggerFactory lf, string qemuBinary = "qemu-system-x86_64", CgroupTree? cgroups = null)
    {
        ArgumentNullException.ThrowIfNull(lf);
        ArgumentException.ThrowIfNullOrWhiteSpace(qemuBinary);
        _loggerFactory = lf;
        _logger = lf.CreateLogger<VmLauncher>();
        _qemuBinary = qemuBinary;
        _cgroups = cgroups is null ? new Lazy<CgroupTree>(CgroupTree.Detect) : new Lazy<CgroupTree>(cgroups);
    }

    /// <summary>The host's cgroups as this launcher uses them.</summary>
    public CgroupTree Cgroups => _cgroups.Value;

    /// <exception cref="ArgumentException">Invalid spec (e.g. socket path too long).</exception>
    /// <exception cref="InvalidOperationException">A QEMU is already running for this runtime dir.</exception>
    /// <exception cref="VmStartException">QEMU failed to start; the message carries its stderr.</exception>
    public async Task<VmProcess> StartAsync(VmSpec spec, CancellationToken ct)
    {
        Validate(spec);
        var layout = new RuntimeDirLayout(spec.RuntimeDir);
        layout.ValidateSocketPaths();
        Directory.CreateDirectory(layout.Root);
        EnsureNothingRunning(layout);
        DeleteStaleFiles(layout);
        string memoryFile = PrepareMemoryFile(spec, layout);
        string? preload = spec.TrackWrites && UffdPreload.WriteTo(layout.PreloadLibrary) ? layout.PreloadLibrary : null;
        VmCgroup? cgroup = CreateCgroup(spec);
        var jail = new JailFile(cgroup?.Directories ?? [], spec.ConsoleLogMaxBytes);
        try
        {
            jail.Write(layout.JailFile);
            return await StartWithPortRetriesAsync(spec, layout, memoryFile, preload, cgroup, jail, ct).ConfigureAwait(false);
        }
        catch
        {
            if (cgroup is not null) await CgroupTree.RemoveAsync(cgroup.Directories, CgroupRemoveWait, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<VmProcess> StartWithPortRetriesAsync(VmSpec spec, RuntimeDirLayout layout, string memoryFile, string? preload,
        VmCgroup? cgroup, JailFile jail, CancellationToken ct)
    {
        bool anyAutoPort = spec.Ports.Any(p => p.HostPort == 0);
        for (int attempt = 1; ; attempt++)
        {
            var ports = HostPortAllocator.Resolve(spec.Ports);
            var args = QemuCommandLine.Build(spec, layout, memoryFile, ports);
            string environment = preload is null ? "" : $"LD_PRELOAD={preload} ";
            await File.WriteAllTextAsync(layout.ArgsFile, environment + QemuCommandLine.ToShellString(_qemuBinary, args) + "\n", ct)
                .ConfigureAwait(false);
            try
            {
                int pid = await LaunchDetachedAsync(args, cgroup, Path.GetFullPath(spec.DiskPath), preload, layout).ConfigureAwait(false);
                return await AttachAsync(pid, layout, ports, jail, preload is not null, ct).ConfigureAwait(false);
            }
            catch (VmStartException e) when (anyAutoPort && attempt < MaxPortAttempts &&
                                             (e.QemuStderr ?? "").Contains("host forwarding rule", StringComparison.OrdinalIgnoreCase))
            {
                _logger.LogInformation("Host port taken while starting {Name} (attempt {Attempt}); retrying with new ports", spec.Name, attempt);
            }
        }
    }

    private static void Validate(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.Name, nameof(spec.Name));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.KernelPath, nameof(spec.KernelPath));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.InitrdPath, nameof(spec.InitrdPath));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.DiskPath, nameof(spec.DiskPath));
        // The launcher opens it for QEMU (read-write), which must not create a missing one.
        if (!File.Exists(spec.DiskPath)) throw new ArgumentException($"Disk '{spec.DiskPath}' does not exist.", nameof(spec));
        ArgumentNullException.ThrowIfNull(spec.KernelCmdline, nameof(spec.KernelCmdline));
        if (spec.Accel is not ("kvm" or "tcg"))
            throw new ArgumentException($"Accel must be 'kvm' or 'tcg', got '{spec.Accel}'.", nameof(spec));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Vcpus, 1, nameof(spec.Vcpus));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.MemoryMiB, 16, nameof(spec.MemoryMiB));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.TcgTranslationCacheMiB, 1, nameof(spec.TcgTranslationCacheMiB));
        ArgumentOutOfRangeException.ThrowIfNegative(spec.ConsoleLogMaxBytes, nameof(spec.ConsoleLogMaxBytes));
        if (spec.ConsoleLogMaxBytes is > 0 and < 64 * 1024)
            throw new ArgumentException("ConsoleLogMaxBytes must be 0 (unbounded) or at least 64 KiB.", nameof(spec));
        if (spec.Confinement is { } jail)
        {
            if (jail.Uid <= 0 || jail.Gid <= 0)
                throw new ArgumentException("A confined VM must run as a non-root uid and gid.", nameof(spec));
            if (jail.Limits is { } l && (l.MemoryBytes < (long)spec.MemoryMiB << 20 || l.Cpus < 1 || l.PidsMax < 16))
                throw new ArgumentException($"Cgroup limits {l} are below what the VM needs.", nameof(spec));
        }
        var hostPorts = new HashSet<int>();
        foreach (var p in spec.Ports)
        {
            if (p.GuestPort is < 1 or > 65535 || p.HostPort is < 0 or > 65535)
                throw new ArgumentException($"Invalid port forward {p} in Ports.", nameof(spec));
            if (p.HostPort != 0 && !hostPorts.Add(p.HostPort))
                throw new ArgumentException($"Host port {p.HostPort} is mapped twice in Ports.", nameof(spec));
        }
    }

    private VmCgroup? CreateCgroup(VmSpec spec)
    {
        if (spec.Confinement is not { Limits: { } limits } jail) return null;
        try
        {
            return Cgroups.Create(jail.CgroupParent, spec.Name, limits);
        }
        catch (IOException e)
        {
            throw new VmStartException($"Could not create the cgroup of VM '{spec.Name}': {e.Message}", inner: e);
        }
    }

    private static void EnsureNothingRunning(RuntimeDirLayout layout)
    {
        var running = VmProcessScanner.FindQemuProcessesUnder(layout.Root);
        if (running.Count > 0)
            throw new InvalidOperationException(
                $"A QEMU process (PID {string.Join(", ", running)}) is already running for {layout.Root}.");
    }

    /// <summary>
    /// Leftovers from a previous run would confuse adoption (old pidfile) or QEMU (old sockets); the console log
    /// starts afresh with each QEMU (it appends).
    /// </summary>
    private static void DeleteStaleFiles(RuntimeDirLayout layout)
    {
        foreach (string path in new[]
                 {
                     layout.PidFile, layout.QmpSocket, layout.AgentSocket, layout.ConsoleLog, layout.JailFile, layout.PreloadLibrary,
                 })
        {
            File.Delete(path);
        }
    }

    private static string PrepareMemoryFile(VmSpec spec, RuntimeDirLayout layout)
    {
        long size = (long)spec.MemoryMiB * 1024 * 1024;
        if (spec.MemoryFile is { } provided)
        {
            string full = Path.GetFullPath(provided);
            var info = new FileInfo(full);
            if (!info.Exists)
                throw new ArgumentException($"Memory file '{full}' does not exist.", nameof(spec));
            if (info.Length < size)
                throw new ArgumentException($"Memory file '{full}' is {info.Length} bytes; the VM needs {size}.", nameof(spec));
            return full;
        }
        // Fresh boot: a sparse all-zero file. Recreated so stale content from an earlier VM never
        // becomes initial guest RAM (and an old file still mapped elsewhere is left untouched).
        string path = layout.DefaultMemoryFile;
        File.Delete(path);
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            fs.SetLength(size);
        return path;
    }

    /// <summary>Starts QEMU detached (<see cref="QemuLaunchScript"/>) and returns its pid.</summary>
    private async Task<int> LaunchDetachedAsync(IReadOnlyList<string> args, VmCgroup? cgroup, string diskPath, string? preload,
        RuntimeDirLayout layout)
    {
        ProcessResult result;
        try
        {
            // Not cancellable: the shell only forks and prints; killing it half-way could lose track of QEMU.
            result = await ProcessRunner.RunAsync(QemuLaunchScript.Shell,
                QemuLaunchScript.Arguments(layout.QemuLog, cgroup?.ProcsFiles ?? [], diskPath, preload, _qemuBinary, args),
                new ProcessRunOptions { WorkingDirectory = layout.Root, Timeout = TimeSpan.FromSeconds(30) },
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            await KillAllAsync(layout).ConfigureAwait(false);
            throw new VmStartException($"Could not launch '{_qemuBinary}': {e.Message}", inner: e);
        }
        if (!result.Succeeded || !int.TryParse(result.Stdout.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0)
            throw new VmStartException($"The QEMU launcher failed (exit {result.ExitCode}): {result.Stderr.Trim()} {result.Stdout.Trim()}",
                result.Stderr, result.ExitCode);
        return pid;
    }

    /// <summary>
    /// Waits until QEMU answers on QMP (its greeting comes from the main loop, so it has finished initialising and
    /// switched to its jail user) or dies (then its log says why), then checks it is the QEMU of this runtime dir, and
    /// arms written-page tracking when QEMU was started with the preload library (<paramref name="track"/>).
    /// </summary>
    private async Task<VmProcess> AttachAsync(int pid, RuntimeDirLayout layout, IReadOnlyList<PortForward> ports, JailFile jail,
        bool track, CancellationToken ct)
    {
        SafeFileHandle? pidfd = Native.PidfdOpen(pid);
        QmpClient? qmp = null;
        try
        {
            qmp = await StartupWait.ConnectQmpAsync(pid, pidfd, layout, StartTimeout, _loggerFactory.CreateLogger<QmpClient>(), ct)
                .ConfigureAwait(false);
            if (qmp is null)
            {
                string log = ReadLog(layout);
                throw new VmStartException($"QEMU failed to start VM in {layout.Root}: {log} [argv in {layout.ArgsFile}]", log);
            }
            if (VmProcess.ReadPidFile(layout.PidFile) != pid || !VmProcess.IsOurQemu(pid, layout))
                throw new VmStartException($"QEMU PID {pid} is not the QEMU of {layout.Root} (pidfile {VmProcess.ReadPidFile(layout.PidFile)}).");
            var tracker = track
                ? WrittenPageTracker.Arm(pid, pidfd, _loggerFactory.CreateLogger<WrittenPageTracker>())
                : WrittenPageTracker.Off("turned off for this VM (VmSpec.TrackWrites)");
            _logger.LogInformation("Started QEMU PID {Pid} in {RuntimeDir}; write tracking {Tracking}", pid, layout.Root, tracker.Status);
            return new VmProcess(pid, pidfd, layout, qmp, ports, jail, tracker, _loggerFactory.CreateLogger<VmProcess>());
        }
        catch (Exception e)
        {
            if (qmp is not null) await qmp.DisposeAsync().ConfigureAwait(false);
            KillLaunched(pid, pidfd, layout);
            pidfd?.Dispose();
            await KillAllAsync(layout).ConfigureAwait(false);
            if (e is VmStartException or OperationCanceledException) throw;
            throw new VmStartException($"QEMU started but could not be attached: {e.Message}", ReadLog(layout), inner: e);
        }
    }

    /// <summary>
    /// The launched pid may still be the shell that joins the cgroups (the scan for QEMU processes does not see it):
    /// killed if its command line still names this runtime dir.
    /// </summary>
    private static void KillLaunched(int pid, SafeFileHandle? pidfd, RuntimeDirLayout layout)
    {
        if (StartupWait.IsDead(pid, pidfd)) return;
        if (ProcFs.ReadCmdline(pid) is { } argv && ProcFs.ReferencesDirectory(argv, layout.Root))
            Native.SendSignal(pid, pidfd, Native.SIGKILL);
    }

    private static string ReadLog(RuntimeDirLayout layout)
    {
        try { return File.ReadAllText(layout.QemuLog).Trim(); }
        catch (IOException) { return ""; }
    }

    /// <summary>
    /// Never leave an orphan: SIGKILL every QEMU referencing this runtime dir (pidfile or not)
    /// and wait for them to go.
    /// </summary>
    private async Task KillAllAsync(RuntimeDirLayout layout)
    {
        // Repeat until a scan comes back empty: a process caught mid-exec can appear after the first scan.
        for (int round = 0; round < 5; round++)
        {
            var pids = new HashSet<int>(VmProcessScanner.FindQemuProcessesUnder(layout.Root));
            if (VmProcess.ReadPidFile(layout.PidFile) is int fromFile && VmProcess.IsOurQemu(fromFile, layout)) pids.Add(fromFile);
            if (pids.Count == 0) return;
            foreach (int pid in pids) await KillOneAsync(pid, layout).ConfigureAwait(false);
        }
    }

    private async Task KillOneAsync(int pid, RuntimeDirLayout layout)
    {
        using var pidfd = VmProcess.OpenVerified(pid, layout);
        if (pidfd is null && !VmProcess.IsOurQemu(pid, layout)) return;
        _logger.LogWarning("Killing QEMU PID {Pid} left by a failed start in {RuntimeDir}", pid, layout.Root);
        Native.SendSignal(pid, pidfd, Native.SIGKILL);
        var deadline = DateTime.UtcNow + KillWait;
        while (DateTime.UtcNow < deadline &&
               (pidfd is not null ? !Native.PidfdHasExited(pidfd) : VmProcess.IsOurQemu(pid, layout)))
        {
            await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
        }
    }
}
