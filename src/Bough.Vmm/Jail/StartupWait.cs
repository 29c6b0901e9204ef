using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>
/// Waits for a detached QEMU to come up. Without <c>-daemonize</c> no parent exits to say "initialised"; QMP does:
/// QEMU greets from its main loop, which runs only once initialisation (including the switch to the jail user) is
/// done. A QEMU that dies first is a failed start, whose reason is in its log.
/// </summary>
internal static class StartupWait
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    /// <returns>The connected client, or null when the process died first.</returns>
    /// <exception cref="VmStartException">Neither within <paramref name="timeout"/>.</exception>
    public static async Task<QmpClient?> ConnectQmpAsync(int pid, SafeFileHandle? pidfd, RuntimeDirLayout layout, TimeSpan timeout,
        ILogger<QmpClient> logger, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (IsDead(pid, pidfd)) return null;
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new VmStartException($"QEMU did not finish initialising within {timeout.TotalSeconds:0} s.");
            if (File.Exists(layout.QmpSocket))
            {
                using var died = CancellationTokenSource.CreateLinkedTokenSource(ct);
                using var stopWatch = new CancellationTokenSource();
                Task watch = CancelOnDeathAsync(pid, pidfd, died, stopWatch.Token);
                try
                {
                    return await QmpClient.ConnectAsync(layout.QmpSocket, logger, remaining, died.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    // The socket file exists a moment before QEMU listens on it.
                }
                catch (Exception e) when (e is QmpDisconnectedException or IOException)
                {
                    // The connection ended before the handshake: QEMU died (checked at the top), or try again.
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    return null; // died while we waited for the greeting
                }
                catch (TimeoutException)
                {
                    throw new VmStartException($"QEMU did not finish initialising within {timeout.TotalSeconds:0} s.");
                }
                finally
                {
                    await stopWatch.CancelAsync().ConfigureAwait(false);
                    await watch.ConfigureAwait(false);
                }
            }
            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Gone or a zombie. A pidfd cannot be fooled by pid reuse; without one, /proc is asked.</summary>
    public static bool IsDead(int pid, SafeFileHandle? pidfd) =>
        pidfd is not null ? Native.PidfdHasExited(pidfd) : !ProcFs.IsRunning(pid);

    private static async Task CancelOnDeathAsync(int pid, SafeFileHandle? pidfd, CancellationTokenSource died, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (IsDead(pid, pidfd))
                {
                    await died.CancelAsync().ConfigureAwait(false);
                    return;
                }
                await Task.Delay(Poll * 2.5, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { /* stopped */ }
    }
}
