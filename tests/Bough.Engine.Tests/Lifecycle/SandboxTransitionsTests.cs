using Bough.Catalog;
using Bough.Engine.Lifecycle;

namespace Bough.Engine.Tests.Lifecycle;

/// <summary>The state table: races that would write a lie (revive the dead) fail loudly.</summary>
public sealed class SandboxTransitionsTests
{
    [Theory]
    [InlineData(SandboxState.Starting, SandboxState.Running)]
    [InlineData(SandboxState.Starting, SandboxState.Paused)]
    [InlineData(SandboxState.Running, SandboxState.Dead)]
    [InlineData(SandboxState.Running, SandboxState.Paused)]
    [InlineData(SandboxState.Running, SandboxState.Stopping)]
    [InlineData(SandboxState.Paused, SandboxState.Starting)]
    [InlineData(SandboxState.Dead, SandboxState.Stopping)]
    [InlineData(SandboxState.Dead, SandboxState.Dead)]
    public void Legal_changes_pass(SandboxState from, SandboxState to) => Assert.True(SandboxTransitions.IsAllowed(from, to));

    [Theory]
    [InlineData(SandboxState.Dead, SandboxState.Running)]
    [InlineData(SandboxState.Dead, SandboxState.Paused)]
    [InlineData(SandboxState.Paused, SandboxState.Running)]
    [InlineData(SandboxState.Stopped, SandboxState.Running)]
    [InlineData(SandboxState.Stopping, SandboxState.Running)]
    [InlineData(SandboxState.Stopping, SandboxState.Dead)]
    [InlineData(SandboxState.Running, SandboxState.Starting)]
    public void Illegal_changes_are_refused(SandboxState from, SandboxState to)
    {
        Assert.False(SandboxTransitions.IsAllowed(from, to));
        var ex = Assert.Throws<InvalidOperationException>(() => SandboxTransitions.Ensure("sb-x", from, to));
        Assert.Contains($"{from.ToName()} -> {to.ToName()}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_runtime_refuses_an_illegal_change_and_keeps_its_record()
    {
        var rt = new SandboxRuntime(new SandboxRecord
        {
            Id = "sb-x", State = SandboxState.Dead, StateReason = "crashed", Image = "base", Accel = "tcg", RuntimeDir = "/nonexistent",
        });

        Assert.Throws<InvalidOperationException>(() => rt.Update(r => r with { State = SandboxState.Running, StateReason = null }));

        Assert.Equal(SandboxState.Dead, rt.Record.State);
        Assert.Equal("crashed", rt.Record.StateReason);
    }
}
