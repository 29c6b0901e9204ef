using Bough.Contracts;

namespace Bough.Engine.Tests.Guest;

/// <summary>The agent channel: reconnects while the VM lives on, never on a runtime that is going away.</summary>
public sealed class GuestChannelTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    // Defect 7. The old GetAgentAsync (c519707^:src/Bough.Engine/Sandboxes/SandboxManager.cs:525-542) checked
    // Stopping only before waiting for AgentGate; after the gate it reconnected (:539) to a runtime a
    // pause or delete had begun to take down, and that connection leaked. Here the exec would reconnect
    // (a second connect) and succeed instead of failing with sandbox_not_running.
    [Fact]
    public async Task A_reconnect_waiting_for_the_gate_gives_up_when_the_sandbox_began_stopping()
    {
        var sb = await _h.CreateAsync();
        var rt = _h.Runtime(sb.Id);
        _h.Agents.LatestFor(sb.Id)!.IsConnected = false;
        await rt.AgentGate.WaitAsync();

        var exec = _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None);
        Assert.False(exec.IsCompleted); // parked on the gate
        rt.Stopping = true; // as pause and delete do before they close the channel
        rt.AgentGate.Release();

        var ex = await Assert.ThrowsAsync<BoughException>(() => exec.Within());
        Assert.Equal(ErrorCodes.SandboxNotRunning, ex.Code);
        Assert.Equal(1, _h.Agents.ConnectsFor(sb.Id));
        Assert.False(rt.Agent is { IsConnected: true });
    }

    [Fact]
    public async Task A_dropped_channel_is_reconnected_while_the_vm_lives()
    {
        var sb = await _h.CreateAsync();
        _h.Agents.LatestFor(sb.Id)!.IsConnected = false;

        var result = await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["echo", "again"]), CancellationToken.None);

        Assert.Equal("again\n", result.Stdout);
        Assert.Equal(2, _h.Agents.ConnectsFor(sb.Id));
        Assert.Same(_h.Agents.LatestFor(sb.Id), _h.Runtime(sb.Id).Agent);
    }

    [Fact]
    public async Task Concurrent_callers_share_one_reconnect()
    {
        var sb = await _h.CreateAsync();
        _h.Agents.LatestFor(sb.Id)!.IsConnected = false;
        var connect = _h.Agents.Connect.Hold(2);

        var execs = Enumerable.Range(0, 5).Select(_ => _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None)).ToList();
        await connect.Entered.Within();
        connect.Release();
        await Task.WhenAll(execs).Within();

        Assert.Equal(2, _h.Agents.ConnectsFor(sb.Id));
    }

    [Fact]
    public async Task The_guest_closing_the_agent_port_drops_the_channel_and_the_next_call_reconnects()
    {
        var sb = await _h.CreateAsync();
        var first = _h.Agents.LatestFor(sb.Id)!;

        await _h.VmOf(sb.Id).CloseAgentPortAsync();

        Assert.True(first.Disposed.IsCompleted);
        var result = await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(2, _h.Agents.ConnectsFor(sb.Id));
    }

    [Fact]
    public async Task A_reconnect_that_fails_is_agent_unavailable_and_the_next_one_may_succeed()
    {
        var sb = await _h.CreateAsync();
        _h.Agents.LatestFor(sb.Id)!.IsConnected = false;
        _h.Agents.Connect.Fail(2, () => new Bough.AgentClient.AgentException("agent_unavailable", "fake: no answer"));

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None));

        Assert.Equal(ErrorCodes.AgentUnavailable, ex.Code);
        Assert.Equal(503, ex.Status);
        Assert.Equal(0, (await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None)).ExitCode);
    }

    [Fact]
    public async Task A_crashed_vm_makes_the_sandbox_dead_with_a_reason()
    {
        var sb = await _h.CreateAsync();
        var agent = _h.Agents.LatestFor(sb.Id)!;

        _h.VmOf(sb.Id).Crash();
        await agent.Disposed.Within();

        var row = await _h.RowAsync(sb.Id);
        Assert.Equal(Bough.Catalog.SandboxState.Dead, row!.State);
        Assert.Contains("exited unexpectedly", row.StateReason, StringComparison.Ordinal);
        Assert.Null(_h.Registry.Get(sb.Id));
        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotRunning, ex.Code);
        Assert.Contains("dead", ex.Message, StringComparison.Ordinal);
        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        Assert.Null(await _h.RowAsync(sb.Id));
    }
}
