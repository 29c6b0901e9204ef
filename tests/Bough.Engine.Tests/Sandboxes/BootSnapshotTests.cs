using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Tests.Sandboxes;

/// <summary>
/// Every create is a restore: the first create of a shape boots cold and publishes a boot snapshot (captured
/// before its identity is applied), later creates restore from it, coldBoot forces a cold boot, and boot
/// snapshots of a shape no longer current are collected once nothing needs them.
/// </summary>
public sealed class BootSnapshotTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync(o => o.BootSnapshots = true);

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task The_first_create_publishes_a_boot_snapshot_before_its_identity_and_the_second_restores_from_it()
    {
        var capture = _h.Capturer.Capture.Hold(1);
        var creating = _h.CreateAsync(env: new() { ["WHO"] = "first" });
        await capture.Entered.Within();
        // Captured while the guest is still nobody: warmed up with what every sandbox of the image shares (clock,
        // entropy, the image's exec defaults, one command), but no hostname and no env of this sandbox.
        var primed = Assert.Single(_h.Agents.Configs).Config;
        Assert.Null(primed.Hostname);
        Assert.Equal("image", primed.Env!["GREETING"]);
        Assert.False(primed.Env.ContainsKey("WHO"));
        Assert.Equal(["/.bough/bin/busybox", "true"], Assert.Single(_h.Agents.Agents.Single().Execs).Argv);
        capture.Release();
        var first = await creating.Within();
        Assert.Equal(first.Id, _h.Agents.Configs.Last().Config.Hostname); // its identity came after the capture

        Assert.Equal(SandboxBoots.Cold, first.Boot);
        Assert.Null(first.SnapshotId);
        var boot = Assert.Single(await BootRowsAsync());
        Assert.NotNull(boot.BootKey);
        Assert.Equal(first.Id, boot.SourceSandboxId);
        Assert.StartsWith("boot.base.1x256.", boot.Tag, StringComparison.Ordinal);
        Assert.Equal("boot", (await _h.Snapshots.GetSnapshotAsync(boot.Id, CancellationToken.None)).Kind);

        var second = await _h.CreateAsync(env: new() { ["WHO"] = "second" });
        Assert.Equal(SandboxBoots.Restored, second.Boot);
        Assert.Equal(boot.Id, second.SnapshotId);
        Assert.Equal(1, _h.Launcher.Boot.Calls);
        Assert.Equal(boot.Id, Assert.Single(_h.Launcher.RestoredFrom).Id);
        Assert.Equal(1, _h.Capturer.Capture.Calls); // the second create published nothing
        // The restored sandbox gets its own identity, and nothing of the first's.
        var config = _h.Agents.Configs.Single(c => c.SandboxId == second.Id).Config;
        Assert.Equal(second.Id, config.Hostname);
        Assert.Equal("second", config.Env!["WHO"]);
        Assert.NotNull(config.Entropy);
        // Ports work as before: the restored VM publishes the create's port.
        Assert.Contains(_h.VmOf(second.Id).Spec.Ports, p => p.GuestPort == 8080);
        Assert.Equal(40_000 + 8080, Assert.Single(second.Ports).HostPort);

        // The tree shows it as a boot snapshot with the restored sandbox under it.
        var tree = await _h.Snapshots.GetTreeAsync(CancellationToken.None);
        var node = Assert.Single(tree.Roots, n => n.Id == boot.Id);
        Assert.Equal("boot", node.SnapshotKind);
        Assert.Contains(node.Children, c => c.Id == second.Id);
    }

    [Fact]
    public async Task ColdBoot_boots_cold_and_publishes_nothing_even_when_a_boot_snapshot_exists()
    {
        var cold = await _h.Sandboxes.CreateAsync(new CreateSandboxRequest { ColdBoot = true }, CancellationToken.None);
        Assert.Equal(SandboxBoots.Cold, cold.Boot);
        Assert.Empty(await BootRowsAsync());

        await _h.CreateAsync(); // publishes
        var again = await _h.Sandboxes.CreateAsync(new CreateSandboxRequest { ColdBoot = true }, CancellationToken.None);
        Assert.Equal(SandboxBoots.Cold, again.Boot);
        Assert.Equal(3, _h.Launcher.Boot.Calls);
        Assert.Empty(_h.Launcher.RestoredFrom);
        Assert.Single(await BootRowsAsync());
    }

    [Fact]
    public async Task ColdBoot_with_a_snapshot_is_refused()
    {
        var source = await _h.CreateAsync();
        await _h.Branching.SnapshotAsync(source.Id, "s1", CancellationToken.None);
        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Branching.CreateFromSnapshotAsync(new CreateSandboxRequest { Snapshot = "s1", ColdBoot = true }, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
    }

    [Fact]
    public async Task Concurrent_first_creates_of_one_shape_make_one_boot_snapshot()
    {
        var capture = _h.Capturer.Capture.Hold(1);
        var first = _h.CreateAsync();
        await capture.Entered.Within();
        // While the first publishes, the others boot cold and leave publishing to it.
        var others = await Task.WhenAll(_h.CreateAsync(), _h.CreateAsync(), _h.CreateAsync()).Within();
        capture.Release();
        await first.Within();

        Assert.All(others, s => Assert.Equal(SandboxBoots.Cold, s.Boot));
        Assert.Single(await BootRowsAsync());
        Assert.Equal(1, _h.Capturer.Capture.Calls);
        Assert.Equal(SandboxBoots.Restored, (await _h.CreateAsync()).Boot);
    }

    [Fact]
    public async Task A_failed_boot_snapshot_capture_does_not_fail_the_create()
    {
        _h.Capturer.FailAfterDiskSwitch(1);
        var first = await _h.CreateAsync();

        Assert.Equal("running", first.State);
        Assert.Empty(await BootRowsAsync());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_h.Options.SnapshotsDir, ".staging")));
        // The VM went on on the new overlay, and the row says so.
        Assert.Equal(Assert.Single(_h.Capturer.Inputs).NextDiskPath, (await _h.RowAsync(first.Id))!.DiskPath);
        Assert.Equal(first.Id, _h.Agents.Configs.Last(c => c.SandboxId == first.Id).Config.Hostname);

        // The next create of the shape tries again.
        var second = await _h.CreateAsync();
        Assert.Equal(SandboxBoots.Cold, second.Boot);
        Assert.Single(await BootRowsAsync());
    }

    [Fact]
    public async Task A_changed_image_is_a_new_shape_and_the_old_boot_snapshot_goes_once_unused()
    {
        var a = await _h.CreateAsync();
        var old = Assert.Single(await BootRowsAsync());
        var b = await _h.CreateAsync();
        Assert.Equal(old.Id, b.SnapshotId);

        RePullImage();
        var c = await _h.CreateAsync();
        Assert.Equal(SandboxBoots.Cold, c.Boot); // the old boot snapshot is never used again
        var fresh = Assert.Single(await BootRowsAsync(), s => s.Id != old.Id);
        Assert.NotEqual(old.BootKey, fresh.BootKey);
        Assert.Equal(fresh.Id, (await _h.CreateAsync()).SnapshotId);

        // Stale, but b runs on it and a's disk chain goes through it: kept until both are gone.
        await _h.Sandboxes.DeleteAsync(a.Id, CancellationToken.None);
        Assert.NotNull(await _h.SnapshotRowAsync(old.Id));
        await _h.Sandboxes.DeleteAsync(b.Id, CancellationToken.None);
        Assert.Null(await _h.SnapshotRowAsync(old.Id));
        Assert.False(Directory.Exists(old.Dir));
        Assert.NotNull(await _h.SnapshotRowAsync(fresh.Id)); // current: kept
    }

    [Fact]
    public async Task A_current_boot_snapshot_stays_when_unused_and_goes_once_its_image_is_deleted()
    {
        var a = await _h.CreateAsync();
        var boot = Assert.Single(await BootRowsAsync());
        await _h.Sandboxes.DeleteAsync(a.Id, CancellationToken.None);
        Assert.NotNull(await _h.SnapshotRowAsync(boot.Id));

        _h.Images.Deleted = true;
        await _h.SnapshotGc.CollectAsync();
        Assert.Null(await _h.SnapshotRowAsync(boot.Id));
    }

    [Fact]
    public async Task A_boot_snapshot_in_use_cannot_be_deleted()
    {
        await _h.CreateAsync();
        var boot = Assert.Single(await BootRowsAsync());
        var restored = await _h.CreateAsync();

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Snapshots.DeleteSnapshotAsync(boot.Id, cascade: false, CancellationToken.None));
        Assert.Equal(ErrorCodes.SnapshotInUse, ex.Code);
        Assert.Contains(restored.Id, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_boot_snapshot_that_fails_to_restore_is_retired_and_the_create_boots_cold()
    {
        await _h.CreateAsync();
        var broken = Assert.Single(await BootRowsAsync());
        _h.Launcher.Restore.Fail(1, () => new IOException("fake: device state does not load"));

        var b = await _h.CreateAsync();
        Assert.Equal("running", b.State);
        Assert.Equal(SandboxBoots.Cold, b.Boot);
        Assert.Null((await _h.SnapshotRowAsync(broken.Id))!.BootKey);
        var replacement = Assert.Single(await BootRowsAsync(), s => s.Id != broken.Id);
        Assert.Equal(broken.BootKey, replacement.BootKey); // same shape, published again by b
        Assert.Equal(replacement.Id, (await _h.CreateAsync()).SnapshotId);
        Assert.Equal(3, (await _h.RowsAsync()).Count); // the failed restore left no row behind
    }

    [Fact]
    public async Task A_guest_that_refuses_the_identity_fails_the_create_without_retiring_the_boot_snapshot()
    {
        await _h.CreateAsync();
        var boot = Assert.Single(await BootRowsAsync());
        _h.Agents.ConfigureFailure = _ => new AgentClient.AgentException("bad_request", "fake: no such user 'nobody2'");

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.CreateAsync());

        Assert.Equal(ErrorCodes.CreateFailed, ex.Code);
        Assert.Equal(boot.BootKey, (await _h.SnapshotRowAsync(boot.Id))!.BootKey); // not the snapshot's fault
        Assert.Equal(1, _h.Launcher.Boot.Calls); // and no cold boot tried after it
        Assert.Single(await _h.RowsAsync());
    }

    [Fact]
    public async Task Shutdown_during_the_boot_snapshot_capture_leaves_nothing_half_published()
    {
        var capture = _h.Capturer.Capture.Hold(1);
        var creating = _h.CreateAsync();
        await capture.Entered.Within();

        _h.Shutdown.BeginShutdown();

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => creating.Within());
        Assert.IsNotType<TimeoutException>(ex);
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Empty(await _h.RowsAsync());
        Assert.Empty(_h.Launcher.Alive);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_h.Options.SnapshotsDir, ".staging")));
    }

    [Fact]
    public async Task A_caller_that_goes_away_during_the_capture_leaves_nothing_and_the_next_create_publishes()
    {
        var capture = _h.Capturer.Capture.Hold(1);
        using var cts = new CancellationTokenSource();
        var creating = _h.Sandboxes.CreateAsync(new CreateSandboxRequest(), cts.Token);
        await capture.Entered.Within();

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => creating.Within());
        Assert.Empty(await _h.SnapshotRows.ListAsync(CancellationToken.None));
        Assert.Empty(await _h.RowsAsync());
        Assert.Equal(SandboxBoots.Cold, (await _h.CreateAsync()).Boot); // the publish right was given back
        Assert.Single(await BootRowsAsync());
    }

    [Fact]
    public async Task A_boot_snapshot_whose_key_was_never_recorded_is_collected_at_start_up()
    {
        // What a daemon killed between publishing the row and recording its key leaves behind.
        var dir = Path.Combine(_h.Options.SnapshotsDir, "sn-halfpublish1");
        Directory.CreateDirectory(dir);
        await _h.SnapshotRows.InsertAsync(new SnapshotRecord
        {
            Id = "sn-halfpublish1", Kind = SnapshotKind.Boot, Image = "base", Vcpus = 1, MemoryMiB = 256, Depth = 1,
            Dir = dir, SourceSandboxId = "sb-gonegonegone",
        }, CancellationToken.None);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        Assert.Null(await _h.SnapshotRowAsync("sn-halfpublish1"));
        Assert.False(Directory.Exists(dir));
    }

    private async Task<List<SnapshotRecord>> BootRowsAsync() =>
        (await _h.SnapshotRows.ListAsync(CancellationToken.None)).Where(s => s.Kind == SnapshotKind.Boot).ToList();

    /// <summary>A re-pulled tag publishes a new disk file under the same name.</summary>
    private void RePullImage()
    {
        var disk = Path.Combine(_h.Root, "images", $"base-{Guid.NewGuid():N}.qcow2");
        File.WriteAllBytes(disk, []);
        _h.Images.DiskPath = disk;
    }
}
