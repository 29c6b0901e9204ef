using System.Text.Json;
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
        var status = await Process.Qmp.ExecuteAsync("query-status", null, ct);
        if (!status.TryGetProperty("running", out var running) || running.GetBoolean()) return false;
        await Process.Qmp.ExecuteAsync("cont", null, ct);
        return true;
    }

    public async Task<string?> ActiveDiskAsync(CancellationToken ct)
    {
        var blocks = await Process.Qmp.ExecuteAsync("query-block", null, ct);
        foreach (var b in blocks.EnumerateArray())
            if (b.TryGetProperty("inserted", out var ins) && ins.TryGetProperty("file", out var file))
                return file.GetString();
        return null;
    }

    public IDisposable WatchAgentPort(Func<Task> onClosed)
    {
        var subscription = Process.Qmp.SubscribeEvents();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var ev in subscription.Reader.ReadAllAsync())
                {
                    if (ev.Name != "VSERPORT_CHANGE" || ev.Data is not { } data) continue;
                    if (!data.TryGetProperty("id", out var id) || id.GetString() != QemuCommandLine.AgentPortDeviceId) continue;
                    if (!data.TryGetProperty("open", out var open) || open.ValueKind != JsonValueKind.False) continue;
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
