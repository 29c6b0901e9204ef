using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Tests.Recovery;

/// <summary>
/// Defect 6: every lifecycle operation observes shutdown. The old SnapshotAsync, BranchAsync,
/// PauseAsync and ResumeAsync (c519707^:src/Bough.Engine/Sandboxes/SandboxManager.Snapshots.cs:23-171)
/// used only the request token; only CreateAsync and ExecStreamAsync (SandboxManager.cs:66, :247)
/// linked the shutdown token that BeginShutdown (:460) cancels. With those, each operation below
/// stays parked in the fake after BeginShutdown and the bounded wait fails.
/// </summary>
public sealed class ShutdownTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_capture_in_progress_ends_when_shutdown_begins()
    {
        var sb = await _h.CreateAsync();
        var capture = _h.Capturer.Capture.Hold(1);
        var snapshot = _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None);
        await capture.Entered.Within();

        _h.Shutdown.BeginShutdown();

        await AssertShuttingDownAsync(snapshot);
        Assert.Null(_h.Registry.HolderOf(sb.Id));
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_h.Options.SnapshotsDir, ".staging")));
    }

    /// <summary>
    /// A buffered exec must end at shutdown too, or the web server waits for it to drain and
    /// the daemon is killed before it stops its VMs (found by RestartTests after the redesign:
    /// only the streamed form linked the shutdown token).
    /// </summary>
    [Fact]
    public async Task A_buffered_exec_in_progress_ends_when_shutdown_begins()
    {
        var sb = await _h.CreateAsync();
        var exec = _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["sleep", "600"]), CancellationToken.None);
        await Task.Yield();
        Assert.False(exec.IsCompleted);

        _h.Shutdown.BeginShutdown();

        var ended = await Record.ExceptionAsync(() => exec.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.NotNull(ended);
        Assert.IsNotType<TimeoutException>(ended); // it ended, and not because the test gave up
    }

    [Fact]
    public async Task A_branch_whose_children_are_starting_ends_when_shutdown_begins_and_leaves_no_children()
    {
        var source = await _h.CreateAsync();
        var parked = _h.Launcher.Restore.Hold(1);
        var branch = _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 2 }, CancellationToken.None);
        await parked.Entered.Within();

        _h.Shutdown.BeginShutdown();

        await AssertShuttingDownAsync(branch);
        Assert.Equal([source.Id], (await _h.RowsAsync()).Select(r => r.Id));
        Assert.Equal([source.Id], _h.Launcher.Alive.Select(v => v.Spec.Name));
    }

    [Fact]
    public async Task A_pause_in_progress_ends_when_shutdown_begins_and_the_sandbox_keeps_running()
    {
        var sb = await _h.CreateAsync();
        var capture = _h.Capturer.Capture.Hold(1);
        var pause = _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        await capture.Entered.Within();

        _h.Shutdown.BeginShutdown();

        await AssertShuttingDownAsync(pause);
        Assert.Equal(SandboxState.Running, (await _h.RowAsync(sb.Id))!.State);
        Assert.True(_h.VmOf(sb.Id).IsAlive);
    }

    [Fact]
    public async Task A_resume_in_progress_ends_when_shutdown_begins_and_the_sandbox_stays_paused()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var restore = _h.Launcher.Restore.Hold(1);
        var resume = _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);
        await restore.Entered.Within();

        _h.Shutdown.BeginShutdown();

        await AssertShuttingDownAsync(resume);
        Assert.Equal(SandboxState.Paused, (await _h.RowAsync(sb.Id))!.State);
        Assert.Null(_h.Registry.Get(sb.Id));
    }

    [Fact]
    public async Task A_create_from_snapshot_in_progress_ends_when_shutdown_begins()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, tag: null, CancellationToken.None);
        var restore = _h.Launcher.Restore.Hold(1);
        var create = _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = snap.Id }, CancellationToken.None);
        await restore.Entered.Within();

        _h.Shutdown.BeginShutdown();

        await AssertShuttingDownAsync(create);
        Assert.Equal([source.Id], (await _h.RowsAsync()).Select(r => r.Id));
    }

    [Fact]
    public async Task Shutdown_stops_every_vm_and_marks_the_rows_stopped()
    {
        var a = await _h.CreateAsync();
        var b = await _h.CreateAsync();

        await _h.Shutdown.ShutdownAsync().Within();

        Assert.Empty(_h.Launcher.Alive);
        Assert.Empty(_h.Registry.Runtimes);
        foreach (var id in new[] { a.Id, b.Id })
            Assert.Equal(SandboxState.Stopped, (await _h.RowAsync(id))!.State);
        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.CreateAsync());
        Assert.Contains("shutting down", ex.Message, StringComparison.Ordinal);
    }

    private static async Task AssertShuttingDownAsync(Task operation)
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => operation.Within());
        Assert.IsNotType<TimeoutException>(ex); // it hung: shutdown did not reach it
        if (ex is OperationCanceledException) return;
        var bough = Assert.IsType<BoughException>(ex);
        Assert.Equal(ErrorCodes.SandboxNotRunning, bough.Code);
        Assert.Contains("the daemon is shutting down", bough.Message, StringComparison.Ordinal);
    }
}

/// <summary>A daemon that lets its VMs run on (for an upgrade) detaches from them and leaves the rows running.</summary>
public sealed class DetachingShutdownTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync(o => o.StopSandboxesOnShutdown = false);

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Shutdown_without_stopping_leaves_the_vms_running_for_the_next_daemon()
    {
        var sb = await _h.CreateAsync();

        await _h.Shutdown.ShutdownAsync().Within();

        var vm = _h.VmOf(sb.Id);
        Assert.True(vm.IsAlive);
        Assert.True(vm.Disposed);
        Assert.Equal(SandboxState.Running, (await _h.RowAsync(sb.Id))!.State);
        Assert.Empty(_h.Registry.Runtimes);
    }
}
