using System.Globalization;
using Bough.Vmm.Tracking;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>
/// A running QEMU process, started detached (<see cref="VmLauncher"/>). QEMU is deliberately not our child: it survives a
/// daemon crash, and a restarted daemon re-attaches with <see cref="TryAdoptAsync"/>.
/// Disposing this object only detaches (closes QMP, stops watching); use
/// <see cref="StopAsync"/> to end the VM.
/// </summary>
public sealed class VmProcess : IAsyncDisposable
{
    private static readonly TimeSpan MonitorInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan FastPollInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan TermGrace = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AdoptQmpTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CgroupRemoveWait = TimeSpan.FromSeconds(2);

    private readonly SafeFileHandle? _pidfd;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _monitorCts = new();
    private readonly SemaphoreSlim _stopLock = new(1, 1);
    private readonly Task _monitor;
    private readonly JailFile _jail;
    private readonly Lazy<Task> _released;
    private int _disposed;

    internal VmProcess(int pid, SafeFileHandle? pidfd, RuntimeDirLayout layout, QmpClient qmp,
                       IReadOnlyList<PortForward> ports, JailFile jail, WrittenPageTracker writeTracker, ILogger logger)
    {
        Pid = pid;
        WriteTracker = writeTracker;
        _pidfd = pidfd;
        Layout = layout;
        Qmp = qmp;
        Ports = ports;
        _jail = jail;
        _logger = logger;
        _released = new Lazy<Task>(ReleaseCgroupAsync);
        _monitor = Task.Run(() => MonitorAsync(_monitorCts.Token));
    }

    /// <summary>The VM's cgroup directories (empty when it has none).</summary>
    public IReadOnlyList<string> CgroupDirectories => _jail.CgroupDirectories;

    public int Pid { get; }
    public RuntimeDirLayout Layout { get; }
    public string RuntimeDir => Layout.Root;
    public QmpClient Qmp { get; }
    public string AgentSocketPath => Layout.AgentSocket;
    public string ConsoleLogPath => Layout.ConsoleLog;

    /// <summary>Port forwards with the host ports actually in use.</summary>
    public IReadOnlyList<PortForward> Ports { get; }

    /// <summary>
    /// Which guest pages QEMU has written since the last capture (armed at start and at adoption; after an adoption the
    /// first capture scans everything again). Captures use it through Bough.Snapshots; disarmed when unavailable.
    /// </summary>
    public WrittenPageTracker WriteTracker { get; }

    /// <summary>
    /// Completes (never faults) when the QEMU process is gone. Detected via a pidfd (immune to
    /// PID reuse), woken early by the QMP socket closing. If this object is disposed while the
    /// VM still runs, the task stays incomplete: detaching (e.g. daemon shutdown) must not look
    /// like the VM dying to code that reacts to its exit.
    /// </summary>
    public Task Exited => _exited.Task;

    /// <summary>Live check (not cached): the exact process we attached to still runs.</summary>
    public bool IsAlive => !_exited.Task.IsCompleted && CheckAlive();

    /// <summary>
    /// Re-attaches to a VM after a daemon restart. Returns null unless the pidfile names a live
    /// QEMU whose command line references <paramref name="runtimeDir"/> (guards against PID
    /// reuse) and its QMP socket answers. Written-page tracking is re-armed from QEMU's userfaultfd; what the previous
    /// daemon knew is lost, so the next capture scans everything and tracking continues from it.
    /// </summary>
    public static async Task<VmProcess?> TryAdoptAsync(string runtimeDir, ILoggerFactory lf, CancellationToken ct)
    {
        var layout = new RuntimeDirLayout(runtimeDir);
        var logger = lf.CreateLogger<VmProcess>();
        int? pid = ReadPidFile(layout.PidFile);
        if (pid is null)
        {
            logger.LogDebug("No usable pidfile in {RuntimeDir}", layout.Root);
            return null;
        }
        SafeFileHandle? pidfd = OpenVerified(pid.Value, layout);
        if (pidfd is null && !IsOurQemu(pid.Value, layout))
        {
            logger.LogInformation("PID {Pid} from {PidFile} is not a QEMU of this runtime dir (exited or reused)", pid, layout.PidFile);
            return null;
        }
        string[]? argv = ProcFs.ReadCmdline(pid.Value);
        QmpClient qmp;
        try
        {
            qmp = await QmpClient.ConnectAsync(layout.QmpSocket, lf.CreateLogger<QmpClient>(), AdoptQmpTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            logger.LogWarning(e, "QEMU PID {Pid} in {RuntimeDir} is alive but its QMP socket does not answer", pid, layout.Root);
            pidfd?.Dispose();
            return null;
        }
        var ports = argv is null ? [] : QemuCommandLine.ParsePortForwards(argv);
        var tracker = WrittenPageTracker.Arm(pid.Value, pidfd, lf.CreateLogger<WrittenPageTracker>());
        logger.LogInformation("Adopted QEMU PID {Pid} in {RuntimeDir}; write tracking {Tracking}", pid, layout.Root, tracker.Status);
        return new VmProcess(pid.Value, pidfd, layout, qmp, ports, JailFile.Read(layout.JailFile), tracker, logger);
    }

    /// <summary>
    /// Ends the VM: QMP <c>quit</c> and up to <paramref name="grace"/> for a clean exit, then
    /// SIGTERM, then SIGKILL. Idempotent and safe to call concurrently; returns once the
    /// process is gone.
    /// </summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken ct)
    {
        await _stopLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StopCoreAsync(grace, ct).ConfigureAwait(false);
        }
        finally
        {
            _stopLock.Release();
        }
        await _released.Value.ConfigureAwait(false);
    }

    private async Task StopCoreAsync(TimeSpan grace, CancellationToken ct)
    {
        if (await WaitExitAsync(TimeSpan.Zero, ct).ConfigureAwait(false)) return;

        if (!Qmp.Disconnected.IsCompleted)
        {
            try
            {
                await Qmp.QuitAsync(ct).WaitAsync(grace, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QmpException or QmpDisconnectedException or TimeoutException or ObjectDisposedException)
            {
                _logger.LogDebug(e, "QMP quit for PID {Pid} did not complete cleanly", Pid);
            }
            if (await WaitExitAsync(grace, ct).ConfigureAwait(false)) return;
        }

        _logger.LogWarning("QEMU PID {Pid} did not quit within {Grace}; sending SIGTERM", Pid, grace);
        Signal(Native.SIGTERM);
        if (await WaitExitAsync(TermGrace, ct).ConfigureAwait(false)) return;

        _logger.LogWarning("QEMU PID {Pid} ignored SIGTERM; sending SIGKILL", Pid);
        Signal(Native.SIGKILL);
        if (!await WaitExitAsync(KillWait, ct).ConfigureAwait(false))
            throw new InvalidOperationException($"QEMU PID {Pid} is still alive {KillWait.TotalSeconds}s after SIGKILL.");
    }

    private bool Signal(int signal)
    {
        // Without a pidfd, re-check identity right before signalling a bare PID.
        if (_pidfd is null && !IsOurQemu(Pid, Layout)) return false;
        return Native.SendSignal(Pid, _pidfd, signal);
    }

    /// <summary>Polls quickly for exit; true once gone (and <see cref="Exited"/> completed).</summary>
    private async Task<bool> WaitExitAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_exited.Task.IsCompleted) return true;
            if (!CheckAlive())
            {
                MarkExited();
                return true;
            }
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(FastPollInterval, ct).ConfigureAwait(false);
        }
    }

    private async Task MonitorAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (!CheckAlive())
                {
                    MarkExited();
                    await _released.Value.ConfigureAwait(false);
                    return;
                }
                TrimConsole();
                // QMP EOF is the earliest sign of exit; then poll fast until the kernel agrees.
                var interval = Qmp.Disconnected.IsCompleted ? FastPollInterval : MonitorInterval;
                await Task.WhenAny(Task.Delay(interval, ct), Qmp.Disconnected).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e)
        {
            _logger.LogError(e, "Exit monitor for QEMU PID {Pid} failed", Pid);
        }
    }

    /// <summary>Keeps console.log under its cap (checked every monitor tick).</summary>
    private void TrimConsole()
    {
        long max = _jail.ConsoleLogMaxBytes;
        if (max <= 0) return;
        try
        {
            // Cut once within an eighth of the cap (at most 1 MiB) of it, down to two eighths under it: the cap holds
            // unless the guest prints more than that eighth within one tick, which a serial console cannot.
            long slack = Math.Min(max / 8, 1L << 20);
            long cut = ConsoleLogTrimmer.Trim(Layout.ConsoleLog, max - slack, max - 2 * slack);
            if (cut > 0) _logger.LogDebug("Cut {Bytes} bytes from the head of {Log}", cut, Layout.ConsoleLog);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(e, "Could not trim {Log}", Layout.ConsoleLog);
        }
    }

    /// <summary>Once QEMU is gone: its cgroup goes too (idempotent, never throws).</summary>
    private async Task ReleaseCgroupAsync()
    {
        if (_jail.CgroupDirectories.Count == 0) return;
        try
        {
            if (!await CgroupTree.RemoveAsync(_jail.CgroupDirectories, CgroupRemoveWait, CancellationToken.None).ConfigureAwait(false))
                _logger.LogWarning("The cgroup of QEMU PID {Pid} ({Dirs}) could not be removed", Pid, string.Join(", ", _jail.CgroupDirectories));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _logger.LogWarning(e, "Removing the cgroup of QEMU PID {Pid} failed", Pid);
        }
    }

    private void MarkExited()
    {
        if (_exited.TrySetResult())
            _logger.LogInformation("QEMU PID {Pid} ({RuntimeDir}) exited", Pid, Layout.Root);
    }

    private bool CheckAlive()
    {
        if (_pidfd is not null && !_pidfd.IsClosed) return !Native.PidfdHasExited(_pidfd);
        return IsOurQemu(Pid, Layout);
    }

    /// <summary>Detaches: closes QMP and the pidfd; the VM keeps running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _monitorCts.Cancel();
        await _monitor.ConfigureAwait(false);
        if (!_exited.Task.IsCompleted && !CheckAlive()) MarkExited();
        await Qmp.DisposeAsync().ConfigureAwait(false);
        WriteTracker.Dispose();
        _pidfd?.Dispose();
        _monitorCts.Dispose();
    }

    internal static int? ReadPidFile(string path)
    {
        try
        {
            string text = File.ReadAllText(path).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The PID is a running QEMU whose argv references this runtime directory.</summary>
    internal static bool IsOurQemu(int pid, RuntimeDirLayout layout)
    {
        string[]? argv = ProcFs.ReadCmdline(pid);
        return argv is not null && ProcFs.IsQemu(argv) && ProcFs.ReferencesDirectory(argv, layout.Root) && ProcFs.IsRunning(pid);
    }

    /// <summary>
    /// Opens a pidfd and verifies identity *after* opening it, so the handle cannot refer to a
    /// process that reused the PID between the check and the open. Null if not ours or no pidfd support.
    /// </summary>
    internal static SafeFileHandle? OpenVerified(int pid, RuntimeDirLayout layout)
    {
        SafeFileHandle? pidfd = Native.PidfdOpen(pid);
        if (pidfd is null) return null;
        if (IsOurQemu(pid, layout) && !Native.PidfdHasExited(pidfd)) return pidfd;
        pidfd.Dispose();
        return null;
    }
}
