using Bough.Contracts;
using Bough.Snapshots;

namespace Bough.Engine.Tests.Snapshots;

/// <summary>Defect 4: a snapshot a child is starting from cannot be deleted, nor its memory image evicted.</summary>
public sealed class SnapshotLeaseTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    // Defect 4, with the child parked inside restore (its row names the snapshot by then, so the old
    // row-based check at c519707^:.../SandboxManager.Snapshots.cs:209-222 also answered 409 here; what is new
    // is that the refusal comes from the lease, before any row is read: "a sandbox is starting from it").
    [Fact]
    public async Task A_snapshot_a_child_is_starting_from_cannot_be_deleted_and_keeps_its_memory_image()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, "s", CancellationToken.None);
        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);
        var dir = (await _h.SnapshotRowAsync(snap.Id))!.Dir;
        var image = Path.Combine(dir, SnapshotFiles.Image);
        await File.WriteAllBytesAsync(image, new byte[4096]);
        var restore = _h.Launcher.Restore.Hold(1);

        var child = _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = "s" }, CancellationToken.None);
        await restore.Entered.Within();
        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Snapshots.DeleteSnapshotAsync("s", cascade: false, CancellationToken.None));
        await _h.SnapshotGc.CollectAsync();

        Assert.Equal(ErrorCodes.SnapshotInUse, ex.Code);
        Assert.Contains("starting from it", ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(image));
        restore.Release();
        var started = Assert.Single(await child.Within());
        Assert.Equal("running", started.State);
        Assert.NotNull(await _h.SnapshotRowAsync(snap.Id));
        Assert.True(File.Exists(image));
    }

    // Defect 4, the window no row covers: a child start holds the snapshot's lease from before its row
    // names the snapshot (ChildStarter) until the VM has mapped the files. The old code had no lease:
    // CreateFromSnapshotAsync resolved the snapshot (c519707^:.../SandboxManager.Snapshots.cs:93) and
    // only wrote the child's row at :497, and DeleteSnapshotAsync (:195-231) decided from rows alone,
    // so a delete in between removed the snapshot under the starting child. Here the delete must wait.
    [Fact]
    public async Task A_leased_snapshot_that_no_row_names_yet_cannot_be_deleted()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, "s", CancellationToken.None);
        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);

        using (_h.SnapshotLeases.Acquire(snap.Id))
        {
            var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Snapshots.DeleteSnapshotAsync(snap.Id, cascade: false, CancellationToken.None));
            Assert.Equal(ErrorCodes.SnapshotInUse, ex.Code);
            Assert.NotNull(await _h.SnapshotRowAsync(snap.Id));
        }

        await _h.Snapshots.DeleteSnapshotAsync(snap.Id, cascade: false, CancellationToken.None);
        Assert.Null(await _h.SnapshotRowAsync(snap.Id));
    }

    // Defect 4, eviction. The old collector (c519707^:.../SandboxManager.Snapshots.cs:309-319) deleted the
    // memory.img of every pause snapshot no row named, with no lease: a child starting from that snapshot
    // (its restorer had just rebuilt memory.img, QEMU had not opened it yet) lost the file.
    [Fact]
    public async Task The_memory_image_of_a_leased_snapshot_is_not_evicted()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var firstPause = (await _h.RowAsync(sb.Id))!.SnapshotId!;
        await _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None); // now no row names firstPause
        var image = Path.Combine((await _h.SnapshotRowAsync(firstPause))!.Dir, SnapshotFiles.Image);
        await File.WriteAllBytesAsync(image, new byte[4096]);

        using (_h.SnapshotLeases.Acquire(firstPause))
        {
            await _h.SnapshotGc.CollectAsync();
            Assert.True(File.Exists(image));
        }

        await _h.SnapshotGc.CollectAsync();
        Assert.False(File.Exists(image)); // unleased, it is evicted: the guard above is what kept it
        Assert.NotNull(await _h.SnapshotRowAsync(firstPause));
    }

    [Fact]
    public async Task A_child_cannot_start_from_a_snapshot_being_deleted()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, tag: null, CancellationToken.None);

        using (_h.SnapshotLeases.TryClaim([snap.Id]))
        {
            var ex = await Assert.ThrowsAsync<BoughException>(() =>
                _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = snap.Id }, CancellationToken.None));
            Assert.Equal(ErrorCodes.SnapshotNotFound, ex.Code);
        }

        Assert.Equal([source.Id], (await _h.RowsAsync()).Select(r => r.Id));
        Assert.Empty(_h.Launcher.RestoredFrom);
    }
}
