using Bough.Contracts;

namespace Bough.Engine.Tests.Sandboxes;

/// <summary>Defect 3: starting N children from a snapshot is all or nothing, also when the caller goes away.</summary>
public sealed class ChildStarterTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_branch_starts_its_children_with_their_own_identity()
    {
        var source = await _h.CreateAsync(env: new() { ["FROM"] = "source" });

        var result = await _h.Branching.BranchAsync(source.Id, new BranchRequest
        {
            Count = 2,
            Children = [new BranchChild { Env = new() { ["CHILD"] = "0" } }],
        }, CancellationToken.None);

        Assert.Equal(2, result.Children.Count);
        Assert.All(result.Children, c => Assert.Equal("running", c.State));
        Assert.All(result.Children, c => Assert.Equal(result.Snapshot.Id, c.SnapshotId));
        var first = _h.Agents.Configs.Single(c => c.SandboxId == result.Children[0].Id).Config;
        Assert.Equal(result.Children[0].Id, first.Hostname);
        Assert.Equal("source", first.Env!["FROM"]);
        Assert.Equal("0", first.Env["CHILD"]);
        Assert.Equal(3, _h.Launcher.Alive.Count);
    }

    // Defect 3 (branch). The old StartManyAsync (c519707^:src/Bough.Engine/Sandboxes/SandboxManager.Snapshots.cs:477)
    // ran Parallel.ForEachAsync with the request token outside any try: on cancellation it threw
    // OperationCanceledException, so the all-or-nothing cleanup at :506-514 never ran and the children
    // that had started stayed running with ids nobody got. The "no children remain" asserts fail there.
    [Fact]
    public async Task A_branch_whose_caller_goes_away_leaves_no_children()
    {
        var source = await _h.CreateAsync();
        var parked = _h.Launcher.Restore.Hold(2);
        using var cts = new CancellationTokenSource();

        var branch = _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 3 }, cts.Token);
        await parked.Entered.Within();
        await _h.Agents.Configured.WhenAtLeast(3).Within(); // the source and two children are up
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => branch).Within();
        await AssertOnlyAsync(source.Id);
    }

    // Defect 3 (create --snapshot -n). Same old code path as above: CreateFromSnapshotAsync
    // (c519707^:.../SandboxManager.Snapshots.cs:106) called StartManyAsync, whose cancellation skipped the cleanup.
    [Fact]
    public async Task A_create_from_snapshot_whose_caller_goes_away_leaves_no_children()
    {
        var source = await _h.CreateAsync();
        await _h.Branching.SnapshotAsync(source.Id, "base-state", CancellationToken.None);
        var parked = _h.Launcher.Restore.Hold(2);
        using var cts = new CancellationTokenSource();

        var create = _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = "base-state", Count = 3 }, cts.Token);
        await parked.Entered.Within();
        await _h.Agents.Configured.WhenAtLeast(3).Within();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => create).Within();
        await AssertOnlyAsync(source.Id);
        Assert.NotNull(await _h.SnapshotRows.GetByTagAsync("base-state", CancellationToken.None));
    }

    [Fact]
    public async Task A_child_that_fails_takes_its_started_siblings_with_it()
    {
        var source = await _h.CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, tag: null, CancellationToken.None);
        _h.Launcher.Restore.Fail(2, () => new IOException("fake: restore failed"));

        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = snap.Id, Count = 3 }, CancellationToken.None));

        Assert.Equal(ErrorCodes.CreateFailed, ex.Code);
        await AssertOnlyAsync(source.Id);
    }

    /// <summary>
    /// Fan-out: the children of one branch start together, as many at once as the setting allows, not a few at a
    /// time. With a degree of parallelism below n the last restores never began while the first were parked, and the
    /// wait below timed out.
    /// </summary>
    [Fact]
    public async Task The_children_of_a_branch_start_at_once()
    {
        const int n = 12;
        _h.Options.MaxParallelChildStarts = n;
        var source = await _h.CreateAsync();
        var parked = Enumerable.Range(1, n).Select(i => _h.Launcher.Restore.Hold(i)).ToList();

        var branch = _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = n }, CancellationToken.None);
        await Task.WhenAll(parked.Select(g => g.Entered)).Within(); // all n restores in flight together
        parked.ForEach(g => g.Release());

        var result = await branch.Within();
        Assert.Equal(n, result.Children.Count);
        Assert.All(result.Children, c => Assert.Equal(SandboxBoots.Restored, c.Boot));
    }

    private async Task AssertOnlyAsync(string sourceId)
    {
        Assert.Equal([sourceId], (await _h.RowsAsync()).Select(r => r.Id));
        Assert.Equal([sourceId], _h.Registry.Runtimes.Select(r => r.Id));
        Assert.Equal([sourceId], _h.Launcher.Alive.Select(v => v.Spec.Name));
        Assert.Equal([sourceId], Directory.EnumerateDirectories(_h.Options.SandboxesDir).Select(Path.GetFileName));
    }
}

/// <summary>How many children start at once when nothing is configured, and that a setting wins.</summary>
public sealed class ChildStartParallelismTests
{
    [Fact]
    public void Kvm_overlaps_many_starts_and_tcg_one_per_core()
    {
        var options = new EngineOptions { DataDir = "/nonexistent" };
        Assert.Equal(EngineOptions.KvmChildStarts, options.ChildStartParallelism("kvm"));
        Assert.Equal(Math.Max(2, Environment.ProcessorCount), options.ChildStartParallelism("tcg"));
    }

    [Fact]
    public void A_configured_value_wins_and_zero_is_refused()
    {
        var options = new EngineOptions { DataDir = "/nonexistent", MaxParallelChildStarts = 5 };
        Assert.Equal(5, options.ChildStartParallelism("kvm"));
        Assert.Equal(5, options.ChildStartParallelism("tcg"));
        options.Validate();

        options.MaxParallelChildStarts = 0;
        var refused = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("MaxParallelChildStarts", refused.Message, StringComparison.Ordinal);
    }
}
