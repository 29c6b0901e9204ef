using Bough.Agent.Native;

namespace Bough.Agent.Transport;

/// <summary>
/// Guest mode: find the virtio-serial port by name (/sys/class/virtio-ports/*/name, never by
/// number, which depends on device order), run a channel on it until the host hangs up, close it,
/// wait ~100 ms and start again. A later host connection (daemon restart, snapshot restore into a
/// new QEMU) is then picked up by the next iteration.
/// </summary>
internal sealed class VirtioPortTransport(string portName, string? devicePath, AgentState state)
{
    private readonly AgentLog _log = state.Log;

    public async Task RunAsync(CancellationToken ct)
    {
        string? lastProblem = null;
        while (!ct.IsCancellationRequested)
        {
            string? problem = null;
            try
            {
                string? path = devicePath ?? FindPort(portName);
                if (path == null) problem = $"virtio port '{portName}' not found";
                else
                {
                    int fd = Libc.open(path, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC | Libc.O_NOCTTY, 0);
                    if (fd < 0) problem = $"open {path}: {Libc.StrError(Libc.Errno)}";
                    else
                    {
                        if (lastProblem != null) _log.Info($"opened {path}");
                        lastProblem = null;
                        await using var stream = new FdStream(fd);
                        await new AgentChannel(stream, state).RunAsync(ct).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                problem = $"channel failed: {e.Message}";
            }
            if (problem != null && problem != lastProblem) _log.Warn(problem + " (retrying)");
            lastProblem = problem ?? lastProblem;
            try { await Task.Delay(100, ct).ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }

    /// <summary>Returns /dev/vportNpM whose sysfs name matches, or null.</summary>
    public static string? FindPort(string name)
    {
        const string root = "/sys/class/virtio-ports";
        if (!Directory.Exists(root)) return null;
        foreach (var dir in Directory.EnumerateDirectories(root))
        {
            if (AgentState.ReadTrimmed(Path.Combine(dir, "name")) == name)
                return "/dev/" + Path.GetFileName(dir);
        }
        return null;
    }
}
