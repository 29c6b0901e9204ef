using Microsoft.Extensions.Logging;

namespace Bough.Vmm;

/// <summary>
/// Starts daemonized QEMU microVMs. A start either returns a fully attached
/// <see cref="VmProcess"/> (QMP connected, identity verified) or throws and leaves no QEMU
/// process behind.
/// </summary>
public sealed class VmLauncher
{
    private const int MaxPortAttempts = 3;
    private static readonly TimeSpan DaemonizeTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan QmpConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly string _qemuBinary;

    public VmLauncher(ILoggerFactory lf, string qemuBinary = "qemu-system-x86_64")
    {
        ArgumentNullException.ThrowIfNull(lf);
        ArgumentException.ThrowIfNullOrWhiteSpace(qemuBinary);
        _loggerFactory = lf;
        _logger = lf.CreateLogger<VmLauncher>();
        _qemuBinary = qemuBinary;
    }

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

        bool anyAutoPort = spec.Ports.Any(p => p.HostPort == 0);
        for (int attempt = 1; ; attempt++)
        {
            var ports = HostPortAllocator.Resolve(spec.Ports);
            var args = QemuCommandLine.Build(spec, layout, memoryFile, ports);
            await File.WriteAllTextAsync(layout.ArgsFile, QemuCommandLine.ToShellString(_qemuBinary, args) + "\n", ct)
                .ConfigureAwait(false);

            var (exitCode, stderr) = await RunDaemonizingAsync(args, layout, ct).ConfigureAwait(false);
            if (exitCode == 0)
                return await AttachAsync(layout, ports, ct).ConfigureAwait(false);

            await KillAllAsync(layout).ConfigureAwait(false);
            bool portClash = stderr.Contains("host forwarding rule", StringComparison.OrdinalIgnoreCase);
            if (portClash && anyAutoPort && attempt < MaxPortAttempts)
            {
                _logger.LogInformation("Host port taken while starting {Name} (attempt {Attempt}); retrying with new ports", spec.Name, attempt);
                continue;
            }
            throw new VmStartException(
                $"QEMU failed to start VM '{spec.Name}' (exit code {exitCode}): {stderr.Trim()} [argv in {layout.ArgsFile}]",
                stderr, exitCode);
        }
    }

    private static void Validate(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.Name, nameof(spec.Name));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.KernelPath, nameof(spec.KernelPath));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.InitrdPath, nameof(spec.InitrdPath));
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.DiskPath, nameof(spec.DiskPath));
        ArgumentNullException.ThrowIfNull(spec.KernelCmdline, nameof(spec.KernelCmdline));
        if (spec.Accel is not ("kvm" or "tcg"))
            throw new ArgumentException($"Accel must be 'kvm' or 'tcg', got '{spec.Accel}'.", nameof(spec));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Vcpus, 1, nameof(spec.Vcpus));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.MemoryMiB, 16, nameof(spec.MemoryMiB));
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.TcgTranslationCacheMiB, 1, nameof(spec.TcgTranslationCacheMiB));
        var hostPorts = new HashSet<int>();
        foreach (var p in spec.Ports)
        {
            if (p.GuestPort is < 1 or > 65535 || p.HostPort is < 0 or > 65535)
                throw new ArgumentException($"Invalid port forward {p} in Ports.", nameof(spec));
            if (p.HostPort != 0 && !hostPorts.Add(p.HostPort))
                throw new ArgumentException($"Host port {p.HostPort} is mapped twice in Ports.", nameof(spec));
        }
    }

    private static void EnsureNothingRunning(RuntimeDirLayout layout)
    {
        var running = VmProcessScanner.FindQemuProcessesUnder(layout.Root);
        if (running.Count > 0)
            throw new InvalidOperationException(
                $"A QEMU process (PID {string.Join(", ", running)}) is already running for {layout.Root}.");
    }

    /// <summary>Leftovers from a previous run would confuse adoption (old pidfile) or QEMU (old sockets).</summary>
    private static void DeleteStaleFiles(RuntimeDirLayout layout)
    {
        foreach (string path in new[] { layout.PidFile, layout.QmpSocket, layout.AgentSocket })
            File.Delete(path);
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

    /// <summary>
    /// Runs QEMU with -daemonize: the launched process exits once the VM is initialised (0) or
    /// failed (non-zero, reason on stderr). The daemon closes its inherited stdio at that point; if
    /// it did not, <see cref="ProcessRunner"/> stops reading shortly after the launcher exited.
    /// </summary>
    private async Task<(int ExitCode, string Stderr)> RunDaemonizingAsync(IReadOnlyList<string> args, RuntimeDirLayout layout, CancellationToken ct)
    {
        ProcessResult result;
        try
        {
            // Deliberately not cancelled by ct: killing the launcher mid-fork could let the
            // daemonized grandchild escape. Initialisation is short; wait for the verdict, then
            // clean up whatever started and honour the cancellation.
            result = await ProcessRunner.RunAsync(_qemuBinary, args,
                new ProcessRunOptions { WorkingDirectory = layout.Root, Timeout = DaemonizeTimeout }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new VmStartException($"Could not start '{_qemuBinary}': {e.Message}", inner: e);
        }
        catch (TimeoutException)
        {
            await KillAllAsync(layout).ConfigureAwait(false);
            throw new VmStartException($"QEMU did not finish initialising within {DaemonizeTimeout.TotalSeconds}s.");
        }
        if (ct.IsCancellationRequested)
        {
            await KillAllAsync(layout).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
        }
        string err = result.Stderr;
        if (result.Stdout.Length > 0) err = (err + "\n" + result.Stdout).Trim();
        return (result.ExitCode, err);
    }

    private async Task<VmProcess> AttachAsync(RuntimeDirLayout layout, IReadOnlyList<PortForward> ports, CancellationToken ct)
    {
        QmpClient? qmp = null;
        Microsoft.Win32.SafeHandles.SafeFileHandle? pidfd = null;
        try
        {
            int pid = VmProcess.ReadPidFile(layout.PidFile)
                      ?? throw new VmStartException($"QEMU reported success but wrote no pidfile at {layout.PidFile}.");
            pidfd = VmProcess.OpenVerified(pid, layout);
            if (pidfd is null && !VmProcess.IsOurQemu(pid, layout))
                throw new VmStartException($"QEMU PID {pid} exited right after starting; see {layout.ConsoleLog}.");
            qmp = await QmpClient.ConnectAsync(layout.QmpSocket, _loggerFactory.CreateLogger<QmpClient>(), QmpConnectTimeout, ct)
                .ConfigureAwait(false);
            _logger.LogInformation("Started QEMU PID {Pid} in {RuntimeDir}", pid, layout.Root);
            return new VmProcess(pid, pidfd, layout, qmp, ports, _loggerFactory.CreateLogger<VmProcess>());
        }
        catch (Exception e)
        {
            if (qmp is not null) await qmp.DisposeAsync().ConfigureAwait(false);
            pidfd?.Dispose();
            await KillAllAsync(layout).ConfigureAwait(false);
            if (e is VmStartException or OperationCanceledException) throw;
            throw new VmStartException($"QEMU started but could not be attached: {e.Message}", inner: e);
        }
    }

    /// <summary>
    /// Never leave an orphan: SIGKILL every QEMU referencing this runtime dir (pidfile or not)
    /// and wait for them to go.
    /// </summary>
    private async Task KillAllAsync(RuntimeDirLayout layout)
    {
        // Repeat until a scan comes back empty: a process caught mid-fork can appear after the first scan.
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
