using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Boot;

/// <summary>A real QEMU process behind <see cref="IVm"/>.</summary>
internal sealed class QemuVm(VmProcess process, ILogger log) : IVm
{
    /// <summary>The process, for the capturer (which talks QMP and reads guest memory itself).</summary>
    public VmProcess Process { get; } = process;

    public int Pid => Process.Pid;
    public string RuntimeDir => Process.RuntimeDir;
    public string AgentSocketPath => Process.AgentSocketPath;
    public IReadOnlyList<PortForward> Ports => Process.Ports;
    public Task Exited => Process.Exited;
    public bool IsAlive => Process.IsAlive;

    public Task StopAsync(TimeSpan grace, CancellationToken ct) => Process.StopAsync(grace, ct);

    public async Task<bool> EnsureRunningAsync(CancellationToken ct)
    {
        if ((await Process.Qmp.QueryStatusAsync(ct)).Running) return false;
        await Process.Qmp.ContAsync(ct);
        return true;
    }

    public Task<string?> ActiveDiskAsync(CancellationToken ct) => Process.Qmp.ActiveDiskFileAsync(ct);

    public IDisposable WatchAgentPort(Func<Task> onClosed)
    {
        var subscription = Process.Qmp.SubscribeEvents();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var ev in subscription.Reader.ReadAllAsync())
                {
                    if (ev.TryGetVserportChange(out var id, out var open) && id == QemuCommandLine.AgentPortDeviceId && !open)
                        await onClosed();
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                log.LogDebug(ex, "agent port watcher of {Dir} ended", RuntimeDir);
            }
        });
        return subscription;
    }

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}
