using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Tests.Snapshots;

/// <summary>
/// Implicit branch snapshots are collected with their last user unless tagged or kept; pause
/// snapshots go with their sandbox. The old collector (c519707^:.../SandboxManager.Snapshots.cs:287-325)
/// only ever removed pause snapshots, so every branch snapshot stayed forever.
/// </summary>
public sealed class SnapshotGcTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task An_implicit_branch_snapshot_goes_with_its_last_user()
    {
        var source = await _h.CreateAsync();
        var branch = await _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 1 }, CancellationToken.None);
        var row = (await _h.SnapshotRowAsync(branch.Snapshot.Id))!;
        Assert.False(branch.Snapshot.Keep);
        Assert.False(row.Keep);
        Assert.Equal(SnapshotKind.Branch, row.Kind);

        await _h.Sandboxes.DeleteAsync(branch.Children[0].Id, CancellationToken.None);
        Assert.NotNull(await _h.SnapshotRowAsync(row.Id)); // the source's disk chain still runs through it

        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);
        Assert.Null(await _h.SnapshotRowAsync(row.Id));
        Assert.False(Directory.Exists(row.Dir));
    }

    [Fact]
    public async Task An_implicit_branch_snapshot_outlives_its_source_while_a_child_runs_on_it()
    {
        var source = await _h.CreateAsync();
        var branch = await _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 1 }, CancellationToken.None);

        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);
        Assert.NotNull(await _h.SnapshotRowAsync(branch.Snapshot.Id));

        await _h.Sandboxes.DeleteAsync(branch.Children[0].Id, CancellationToken.None);
        Assert.Null(await _h.SnapshotRowAsync(branch.Snapshot.Id));
    }

    [Fact]
    public async Task A_chain_of_implicit_branch_snapshots_folds_up_leaves_first()
    {
        var a = await _h.CreateAsync();
        var first = await _h.Branching.BranchAsync(a.Id, new BranchRequest { Count = 1 }, CancellationToken.None);
        var c = first.Children[0];
        var second = await _h.Branching.BranchAsync(c.Id, new BranchRequest { Count = 1 }, CancellationToken.None);
        Assert.Equal(first.Snapshot.Id, second.Snapshot.ParentId);

        foreach (var id in new[] { a.Id, c.Id, second.Children[0].Id })
            await _h.Sandboxes.DeleteAsync(id, CancellationToken.None);

        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Equal([".staging"], Directory.EnumerateDirectories(_h.Options.SnapshotsDir).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("kept-by-tag", null)]
    [InlineData(null, true)]
    public async Task A_tagged_or_kept_branch_snapshot_stays(string? tag, bool? keep)
    {
        var source = await _h.CreateAsync();
        var branch = await _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 1, Tag = tag, Keep = keep }, CancellationToken.None);
        Assert.True(branch.Snapshot.Keep);

        await _h.Sandboxes.DeleteAsync(branch.Children[0].Id, CancellationToken.None);
        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);

        var row = await _h.SnapshotRowAsync(branch.Snapshot.Id);
        Assert.NotNull(row);
        Assert.True(Directory.Exists(row.Dir));
    }

    [Fact]
    public async Task An_explicit_snapshot_stays_after_its_source_is_deleted()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, tag: null, CancellationToken.None);

        await _h.Sandboxes.DeleteAsync(source.Id, CancellationToken.None);

        Assert.NotNull(await _h.SnapshotRowAsync(snap.Id));
    }

    [Fact]
    public async Task A_pause_snapshot_goes_with_its_deleted_sandbox()
    {
        var sb = await _h.CreateAsync();
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var pause = (await _h.SnapshotRowAsync((await _h.RowAsync(sb.Id))!.SnapshotId!))!;
        await _h.SnapshotGc.CollectAsync();
        Assert.NotNull(await _h.SnapshotRowAsync(pause.Id)); // the paused sandbox needs it

        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);

        Assert.Null(await _h.SnapshotRowAsync(pause.Id));
        Assert.False(Directory.Exists(pause.Dir));
    }
}
