using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Lifecycle;

namespace Bough.Engine.Tests.Sandboxes;

/// <summary>Defect 2: delete of paused sandboxes, and delete against a pause or resume in progress.</summary>
public sealed class PauseResumeDeleteTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Pause_keeps_the_state_in_a_pause_snapshot_and_resume_restores_from_it()
    {
        var sb = await _h.CreateAsync();
        var vm = _h.VmOf(sb.Id);

        var paused = await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);

        Assert.Equal("paused", paused.State);
        Assert.False(vm.IsAlive);
        Assert.Null(_h.Registry.Get(sb.Id));
        var row = await _h.RowAsync(sb.Id);
        Assert.Equal(SandboxState.Paused, row!.State);
        Assert.Null(row.DiskPath);
        var snap = await _h.SnapshotRowAsync(row.SnapshotId!);
        Assert.Equal(SnapshotKind.Pause, snap!.Kind);
        Assert.Empty(Directory.EnumerateFiles(row.RuntimeDir, "disk*.qcow2"));

        var resumed = await _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);

        Assert.Equal("running", resumed.State);
        Assert.Equal(snap.Id, Assert.Single(_h.Launcher.RestoredFrom).Id);
        Assert.Equal(SandboxState.Running, (await _h.RowAsync(sb.Id))!.State);
        Assert.Equal(2, _h.Agents.Configs.Count(c => c.SandboxId == sb.Id)); // identity re-applied after the resume
        var exec = await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["echo", "back"]), CancellationToken.None);
        Assert.Equal("back\n", exec.Stdout);
    }

    [Fact]
    public async Task Deleting_a_paused_sandbox_removes_its_row_and_its_pause_snapshot()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var snap = (await _h.SnapshotRowAsync((await _h.RowAsync(sb.Id))!.SnapshotId!))!;

        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);

        Assert.Null(await _h.RowAsync(sb.Id));
        Assert.Null(await _h.SnapshotRowAsync(snap.Id));
        Assert.False(Directory.Exists(snap.Dir));
        Assert.False(Directory.Exists(Path.Combine(_h.Options.SandboxesDir, sb.Id)));
    }

    // Defect 2 (the 404). Old DeleteAsync (c519707^:src/Bough.Engine/Sandboxes/SandboxManager.cs:180-195) found
    // the running runtime, waited on its Lifecycle semaphore behind the pause, and then, because the pause
    // had removed the runtime (SandboxManager.Snapshots.cs:129), threw NotFound at :195 although the paused
    // row existed: this test's delete would throw sandbox_not_found and leave row and snapshot behind.
    [Fact]
    public async Task A_delete_that_waited_for_a_pause_deletes_the_paused_sandbox()
    {
        var sb = await _h.CreateAsync();
        var capture = _h.Capturer.Capture.Hold(1);
        var pause = _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        await capture.Entered.Within();

        var delete = _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None); // queues on the id's lease
        Assert.False(delete.IsCompleted);
        capture.Release();

        Assert.Equal("paused", (await pause.Within()).State);
        await delete.Within();
        Assert.Null(await _h.RowAsync(sb.Id));
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Empty(_h.Launcher.Alive);
    }

    // Defect 2 (the resume). Here the resume is first and the delete queues on the id's lease until the
    // resumed VM runs; then the delete acts on the resumed runtime. (The old code got this order right:
    // the resume registered its runtime before restoring, so the delete found it and waited.)
    [Fact]
    public async Task A_delete_during_a_resume_deletes_the_resumed_sandbox()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var restore = _h.Launcher.Restore.Hold(1);
        var resume = _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);
        await restore.Entered.Within();

        var delete = _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        Assert.False(delete.IsCompleted);
        restore.Release();

        Assert.Equal("running", (await resume.Within()).State);
        await delete.Within();
        await AssertGoneAsync(sb.Id);
    }

    // Defect 2 (the resume slipping in). The old delete of a paused row took no lock at all
    // (c519707^:.../SandboxManager.cs:180-189: read the row, kill leftovers, delete the directory and the
    // row), and the old resume (SandboxManager.Snapshots.cs:140-171) only took a lock on its own new
    // runtime: a resume starting while the delete ran restored a VM whose directory and row the delete
    // removed under it, leaving a live VM and a registered runtime with no row. Now both queue on the
    // id's lease: whichever runs second sees what the first left (a deleted row: 404; a running VM: deleted).
    [Fact]
    public async Task A_delete_and_a_resume_queued_together_end_with_the_sandbox_gone()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var holder = await _h.Registry.AcquireAsync(sb.Id, SandboxOperation.Shutdown, wait: null, CancellationToken.None);

        var delete = _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        var resume = _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);
        Assert.False(delete.IsCompleted);
        Assert.False(resume.IsCompleted);
        await holder.DisposeAsync();

        await delete.Within();
        try
        {
            await resume.Within(); // it ran first; the delete then removed what it resumed
        }
        catch (BoughException ex) when (ex.Code is ErrorCodes.SandboxNotFound or ErrorCodes.SandboxBusy)
        {
            // it ran second and found no sandbox (or gave up waiting): either is a consistent answer
        }
        await AssertGoneAsync(sb.Id);
    }

    [Fact]
    public async Task A_resume_that_fails_leaves_the_sandbox_paused_and_resumable()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        _h.Launcher.Restore.Fail(1, () => new IOException("fake: restore failed"));

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.ResumeAsync(sb.Id, CancellationToken.None));

        Assert.Equal(ErrorCodes.CreateFailed, ex.Code);
        var row = await _h.RowAsync(sb.Id);
        Assert.Equal(SandboxState.Paused, row!.State);
        Assert.StartsWith("resume failed", row.StateReason, StringComparison.Ordinal);
        Assert.NotNull(await _h.SnapshotRowAsync(row.SnapshotId!));
        Assert.Null(_h.Registry.Get(sb.Id));
        Assert.Empty(_h.Launcher.Alive);
        Assert.Equal("running", (await _h.Branching.ResumeAsync(sb.Id, CancellationToken.None)).State);
    }

    // Found by this harness (not one of the eight): a VM that dies while its pause is
    // capturing is marked dead by the exit watcher; the pause then asked for dead -> paused, which
    // the state table refuses, and an InvalidOperationException (a 500) escaped PauseAsync.
    [Fact]
    public async Task A_pause_whose_vm_dies_during_the_capture_fails_cleanly()
    {
        var sb = await _h.CreateAsync();
        var agent = _h.Agents.LatestFor(sb.Id)!;
        var capture = _h.Capturer.Capture.Hold(1);
        var pause = _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        await capture.Entered.Within();
        _h.VmOf(sb.Id).Crash();
        await agent.Disposed.Within(); // the exit watcher has marked it dead
        capture.Release();

        var ex = await Record.ExceptionAsync(() => pause.Within());

        var bough = Assert.IsType<BoughException>(ex);
        Assert.Equal(ErrorCodes.SandboxNotRunning, bough.Code);
        Assert.Equal(SandboxState.Dead, (await _h.RowAsync(sb.Id))!.State);
        Assert.Null(_h.Registry.HolderOf(sb.Id));
        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
    }

    private async Task AssertGoneAsync(string id)
    {
        Assert.Null(await _h.RowAsync(id));
        Assert.Null(_h.Registry.Get(id));
        Assert.Empty(_h.Launcher.Alive);
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None)); // the pause snapshot went with it
        Assert.False(Directory.Exists(Path.Combine(_h.Options.SandboxesDir, id)));
        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.GetAsync(id, CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotFound, ex.Code);
    }
}
