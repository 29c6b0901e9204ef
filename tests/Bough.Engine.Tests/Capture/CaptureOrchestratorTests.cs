using Bough.Catalog;
using Bough.Contracts;
using Bough.Snapshots;

namespace Bough.Engine.Tests.Capture;

/// <summary>Captures through the real orchestrator, with the fake capturer writing the snapshot files.</summary>
public sealed class CaptureOrchestratorTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_snapshot_is_published_and_the_sandbox_continues_on_the_next_disk()
    {
        var sb = await _h.CreateAsync();
        var firstDisk = (await _h.RowAsync(sb.Id))!.DiskPath!;

        var snap = await _h.Branching.SnapshotAsync(sb.Id, "first", CancellationToken.None);

        var input = Assert.Single(_h.Capturer.Inputs);
        Assert.Equal(firstDisk, input.ActiveDiskPath);
        Assert.Null(input.Parent);
        Assert.Equal("first", snap.Tag);
        Assert.Equal("snapshot", snap.Kind);
        Assert.True(snap.Keep);
        var row = await _h.SnapshotRowAsync(snap.Id);
        Assert.True(File.Exists(Path.Combine(row!.Dir, SnapshotFiles.Layer)));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_h.Options.SnapshotsDir, ".staging")));
        Assert.Equal(input.NextDiskPath, _h.Runtime(sb.Id).Record.DiskPath);
        Assert.Equal(input.NextDiskPath, (await _h.RowAsync(sb.Id))!.DiskPath);
        var (repointed, published) = Assert.Single(_h.Capturer.Repoints);
        Assert.Equal(input.NextDiskPath, repointed);
        Assert.Equal(snap.Id, published.Id);
        Assert.False(File.Exists(firstDisk)); // its runtime-dir name is dropped once repointed

        // The next capture freezes the new disk and names the first snapshot as its parent.
        await _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None);
        var second = _h.Capturer.Inputs.Last();
        Assert.Equal(input.NextDiskPath, second.ActiveDiskPath);
        Assert.Equal(snap.Id, second.Parent?.Id);
    }

    // Defect 1. The old CaptureAsync (c519707^:src/Bough.Engine/Sandboxes/SandboxManager.Snapshots.cs:402-407)
    // caught every capture failure, deleted the staging dir and rethrew, ignoring
    // SnapshotCaptureException.DiskSwitched: the row and rt.Record kept the frozen overlay as DiskPath,
    // so the runtime/row assertions below fail, and the next capture (:388) froze the wrong file.
    [Fact]
    public async Task A_capture_failing_after_the_disk_switch_records_the_new_active_disk()
    {
        var sb = await _h.CreateAsync();
        var before = (await _h.RowAsync(sb.Id))!.DiskPath!;
        _h.Capturer.FailAfterDiskSwitch(1);

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None));

        Assert.Equal(ErrorCodes.GuestError, ex.Code);
        var switched = Assert.Single(_h.Capturer.Inputs).NextDiskPath;
        Assert.NotEqual(before, switched);
        Assert.Equal(switched, _h.Runtime(sb.Id).Record.DiskPath);
        Assert.Equal(switched, (await _h.RowAsync(sb.Id))!.DiskPath);
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_h.Options.SnapshotsDir, ".staging")));
        Assert.Equal("running", (await _h.Sandboxes.GetAsync(sb.Id, CancellationToken.None)).State);

        await _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None);

        Assert.Equal(switched, _h.Capturer.Inputs.Last().ActiveDiskPath);
    }

    // Defect 8, as it happened: the old capture read `source = rt.Record` before capturing
    // (c519707^:.../SandboxManager.Snapshots.cs:373) and wrote `source with { DiskPath = nextDisk }` to the
    // catalog and rt.Record after it (:410-412). A VM that died during the capture was marked dead by
    // the exit watcher (SandboxManager.cs:597-598) in between, and the capture wrote 'running' back over it.
    [Fact]
    public async Task A_vm_dying_during_a_capture_stays_dead_and_the_disk_switch_is_kept()
    {
        var sb = await _h.CreateAsync();
        var agent = _h.Agents.LatestFor(sb.Id)!;
        var capture = _h.Capturer.Capture.Hold(1);
        var snapshot = _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None);
        await capture.Entered.Within();

        _h.VmOf(sb.Id).Crash();
        await agent.Disposed.Within(); // the exit watcher's last step
        capture.Release();
        await snapshot.Within();

        var row = await _h.RowAsync(sb.Id);
        Assert.Equal(SandboxState.Dead, row!.State);
        Assert.Contains("exited unexpectedly", row.StateReason, StringComparison.Ordinal);
        Assert.Equal(_h.Capturer.Inputs.Single().NextDiskPath, row.DiskPath);
        Assert.Null(_h.Registry.Get(sb.Id));
        Assert.Equal("dead", (await _h.Sandboxes.GetAsync(sb.Id, CancellationToken.None)).State);
    }
}
