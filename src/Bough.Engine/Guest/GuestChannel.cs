using Bough.AgentClient;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Events;
using Bough.Engine.Lifecycle;
using Bough.Engine.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Guest;

/// <summary>
/// The channel to each sandbox's guest agent: the first connect after a boot or restore,
/// reconnects when it dropped while the VM lives on, and the watchers that notice a VM that
/// died or an agent that closed its port.
/// </summary>
internal sealed class GuestChannel(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, IAgentConnector connector,
    EventBus events, ILogger<GuestChannel> log)
{
    /// <summary>Connects the agent of a VM that is starting (boot: <see cref="EngineOptions.AgentTimeout"/>; restore: <see cref="EngineOptions.RestoreAgentTimeout"/>).</summary>
    public async Task<IGuestAgent> ConnectAsync(SandboxRuntime rt, IVm vm, bool restored, CancellationToken ct)
    {
        var agent = await connector.ConnectAsync(rt.Id, vm.AgentSocketPath,
            restored ? options.RestoreAgentTimeout : options.AgentTimeout, ct);
        rt.Agent = agent;
        return agent;
    }

    /// <summary>The sandbox's agent, reconnecting if the channel dropped while the VM lives on.</summary>
    public async Task<IGuestAgent> GetAgentAsync(string id, CancellationToken ct)
    {
        if (!registry.TryGet(id, out var rt))
        {
            var row = SandboxId.IsWellFormed(id) ? await store.GetAsync(id, ct) : null;
            if (row is null) throw BoughException.NotFound(id);
            throw BoughException.NotRunning($"sandbox {id} is {row.State.ToName()}"
                + (row.StateReason is null ? "" : $" ({row.StateReason})") + "; only running sandboxes accept this");
        }
        EnsureUsable(rt);
        if (rt.Agent is { IsConnected: true } live) return live;

        await rt.AgentGate.WaitAsync(ct);
        try
        {
            // Re-check under the gate: a pause or delete may have begun while we waited, and a
            // connection made now would leak on a runtime nobody will dispose again.
            EnsureUsable(rt);
            if (rt.Agent is { IsConnected: true } again) return again;
            if (rt.Vm is not { IsAlive: true } vm) throw BoughException.NotRunning($"sandbox {id}'s VM is not running");
            if (rt.Agent is { } old) await old.DisposeAsync();
            rt.Agent = null;
            IGuestAgent agent;
            try
            {
                agent = await connector.ConnectAsync(id, vm.AgentSocketPath, options.AgentReconnectTimeout, ct);
            }
            catch (AgentException ex)
            {
                throw new BoughException(ErrorCodes.AgentUnavailable, $"the agent of sandbox {id} is not answering: {ex.Message}", ex);
            }
            if (rt.Stopping)
            {
                await agent.DisposeAsync();
                EnsureUsable(rt);
            }
            rt.Agent = agent;
            log.LogInformation("reconnected to the agent of sandbox {Id}", id);
            return agent;
        }
        finally
        {
            rt.AgentGate.Release();
        }
    }

    /// <summary>Closes the agent channel of a runtime that is going away (under its gate, so no reconnect races it).</summary>
    public async Task CloseAsync(SandboxRuntime rt)
    {
        rt.Stopping = true;
        rt.AgentPortWatch?.Dispose();
        rt.AgentPortWatch = null;
        await rt.AgentGate.WaitAsync(CancellationToken.None);
        try
        {
            if (rt.Agent is { } agent)
            {
                rt.Agent = null;
                try { await agent.DisposeAsync(); }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or AgentException) { log.LogDebug(ex, "agent dispose"); }
            }
        }
        finally
        {
            rt.AgentGate.Release();
        }
    }

    /// <summary>
    /// Starts both watchers for a VM that is now the sandbox's. When the guest closes the agent
    /// port (the agent crashed or was killed) QEMU says so, but the socket to QEMU stays open:
    /// without the watcher callers would wait forever on an agent that will never answer.
    /// Dropping the channel fails them with agent_unavailable; the next call reconnects.
    /// </summary>
    public void Watch(SandboxRuntime rt, IVm vm)
    {
        rt.AgentPortWatch?.Dispose();
        rt.AgentPortWatch = vm.WatchAgentPort(async () =>
        {
            if (rt.Agent is not { } agent) return;
            log.LogWarning("sandbox {Id}: the guest closed the agent port; dropping the agent channel", rt.Id);
            await agent.DisposeAsync();
        });
        _ = vm.Exited.ContinueWith(_ => OnExitedAsync(rt), CancellationToken.None,
            TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
    }

    private async Task OnExitedAsync(SandboxRuntime rt)
    {
        if (rt.Stopping || rt.Record.State != SandboxState.Running) return;
        var reason = "the VM process exited unexpectedly";
        var tail = ConsoleLog.Tail(rt.Record.RuntimeDir, 3);
        if (tail.Length > 0) reason += "; console: " + tail.ReplaceLineEndings(" | ");
        log.LogWarning("sandbox {Id}: {Reason}", rt.Id, reason);
        try
        {
            if (await rt.UpdateAsync(store, r => r.State == SandboxState.Running ? r with { State = SandboxState.Dead, StateReason = reason } : r)
                is { State: SandboxState.Dead } dead) events.SandboxState(dead);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            log.LogWarning(ex, "could not record the death of sandbox {Id}", rt.Id);
        }
        registry.Remove(rt);
        if (rt.Agent is { } a) await a.DisposeAsync();
    }

    private static void EnsureUsable(SandboxRuntime rt)
    {
        var state = rt.Record.State;
        if (state != SandboxState.Running || rt.Stopping)
            throw BoughException.NotRunning($"sandbox {rt.Id} is {(rt.Stopping && state == SandboxState.Running ? "stopping" : state.ToName())}");
    }
}
