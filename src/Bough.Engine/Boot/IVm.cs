using Bough.Vmm;

namespace Bough.Engine.Boot;

/// <summary>
/// What the engine needs of one running VM. The seam between the engine and QEMU: the real
/// one is <see cref="QemuVm"/>; engine tests use a fake so lifecycle races can be tested
/// in milliseconds without booting anything.
/// </summary>
public interface IVm : IAsyncDisposable
{
    int Pid { get; }
    string RuntimeDir { get; }
    string AgentSocketPath { get; }
    IReadOnlyList<PortForward> Ports { get; }

    /// <summary>Completes when the VM process has exited, for any reason.</summary>
    Task Exited { get; }

    bool IsAlive { get; }

    /// <summary>Asks the VM to quit, waits up to <paramref name="grace"/>, then kills it.</summary>
    Task StopAsync(TimeSpan grace, CancellationToken ct);

    /// <summary>Continues the VM if it is stopped (a capture the daemon died in); true if it was.</summary>
    Task<bool> EnsureRunningAsync(CancellationToken ct);

    /// <summary>The disk file the VM writes to now (top of its chain), if it can tell.</summary>
    Task<string?> ActiveDiskAsync(CancellationToken ct);

    /// <summary>
    /// Calls <paramref name="onClosed"/> each time the guest closes the agent's port (the agent
    /// crashed or was killed). Dispose the result to stop watching.
    /// </summary>
    IDisposable WatchAgentPort(Func<Task> onClosed);
}
