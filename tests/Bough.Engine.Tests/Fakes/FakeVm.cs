using Bough.Engine.Boot;
using Bough.Vmm;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake VM behind <see cref="IVm"/>: no VM can run in these tests (no QEMU, no KVM, and they
/// must take seconds). It is "alive" until it is stopped or the test crashes it.
/// </summary>
internal sealed class FakeVm(int pid, VmSpec spec, bool restored) : IVm
{
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly List<Func<Task>> _portWatchers = [];
    private int _stops;

    public VmSpec Spec { get; } = spec;
    public bool Restored { get; } = restored;
    public int Pid { get; } = pid;
    public string RuntimeDir => Spec.RuntimeDir;
    public string AgentSocketPath => Path.Combine(Spec.RuntimeDir, "agent.sock");
    public IReadOnlyList<PortForward> Ports { get; } = spec.Ports.Select(p => new PortForward(p.GuestPort, 40_000 + p.GuestPort)).ToList();
    public Task Exited => _exited.Task;
    public bool IsAlive => !_exited.Task.IsCompleted;
    public int Stops => Volatile.Read(ref _stops);
    public bool Disposed { get; private set; }

    /// <summary>What <see cref="ActiveDiskAsync"/> answers (an adopted VM's real top of chain).</summary>
    public string? ActiveDisk { get; set; }

    /// <summary>Left stopped by a capture the previous daemon died in; <see cref="EnsureRunningAsync"/> continues it.</summary>
    public bool Suspended { get; set; }

    /// <summary>Simulates the VM process dying on its own.</summary>
    public void Crash() => _exited.TrySetResult();

    /// <summary>Simulates the guest closing the agent's port (the agent crashed): calls every watcher.</summary>
    public async Task CloseAgentPortAsync()
    {
        List<Func<Task>> watchers;
        lock (_gate) watchers = [.. _portWatchers];
        foreach (var w in watchers) await w();
    }

    public Task StopAsync(TimeSpan grace, CancellationToken ct)
    {
        Interlocked.Increment(ref _stops);
        _exited.TrySetResult();
        return Task.CompletedTask;
    }

    public Task<bool> EnsureRunningAsync(CancellationToken ct)
    {
        var was = Suspended;
        Suspended = false;
        return Task.FromResult(was);
    }

    public Task<string?> ActiveDiskAsync(CancellationToken ct) => Task.FromResult(ActiveDisk);

    public IDisposable WatchAgentPort(Func<Task> onClosed)
    {
        lock (_gate) _portWatchers.Add(onClosed);
        return new Unwatch(this, onClosed);
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }

    private sealed class Unwatch(FakeVm vm, Func<Task> watcher) : IDisposable
    {
        public void Dispose()
        {
            lock (vm._gate) vm._portWatchers.Remove(watcher);
        }
    }
}
