using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Sandboxes;
using Bough.Engine.Snapshots;

namespace Bough.Engine.Tests.Recovery;

/// <summary>Start-up reconciles the catalog left by a previous daemon with what is alive.</summary>
public sealed class StartupRecoveryTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Interrupted_creates_and_deletes_are_finished()
    {
        var starting = await InsertAsync(SandboxState.Starting);
        var stopping = await InsertAsync(SandboxState.Stopping);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        foreach (var row in new[] { starting, stopping })
        {
            Assert.Null(await _h.RowAsync(row.Id));
            Assert.False(Directory.Exists(row.RuntimeDir));
        }
    }

    [Fact]
    public async Task A_running_row_whose_vm_is_gone_becomes_dead_with_a_reason()
    {
        var row = await InsertAsync(SandboxState.Running, pid: 4242);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        var after = await _h.RowAsync(row.Id);
        Assert.Equal(SandboxState.Dead, after!.State);
        Assert.Contains("pid 4242", after.StateReason, StringComparison.Ordinal);
        Assert.Contains("gone", after.StateReason, StringComparison.Ordinal);
        Assert.Null(_h.Registry.Get(row.Id));
        Assert.True(Directory.Exists(row.RuntimeDir)); // its disk is kept until it is deleted
    }

    [Fact]
    public async Task A_running_row_whose_vm_is_alive_is_adopted_continued_and_served()
    {
        var row = await InsertAsync(SandboxState.Running, pid: 1);
        var newerDisk = Path.Combine(row.RuntimeDir, "disk-after-capture.qcow2");
        var vm = _h.Launcher.LeaveRunning(row.RuntimeDir, newerDisk);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        var after = await _h.RowAsync(row.Id);
        Assert.Equal(SandboxState.Running, after!.State);
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Equal(newerDisk, after.DiskPath); // the disk the VM really writes to
        Assert.False(vm.Suspended); // a VM left stopped by an interrupted capture is continued
        Assert.Same(vm, _h.Runtime(row.Id).Vm);
        // The agent connects on first use.
        var exec = await _h.Sandboxes.ExecAsync(row.Id, new ExecCommand(["echo", "adopted"]), CancellationToken.None);
        Assert.Equal("adopted\n", exec.Stdout);
        // And the exit watcher is on it.
        vm.Crash();
        await _h.Agents.LatestFor(row.Id)!.Disposed.Within();
        Assert.Equal(SandboxState.Dead, (await _h.RowAsync(row.Id))!.State);
    }

    [Fact]
    public async Task A_paused_row_stays_paused()
    {
        var row = await InsertAsync(SandboxState.Paused);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        Assert.Equal(SandboxState.Paused, (await _h.RowAsync(row.Id))!.State);
        Assert.Null(_h.Registry.Get(row.Id));
    }

    [Fact]
    public async Task Unpublished_snapshot_directories_are_removed_and_published_ones_kept()
    {
        var published = SnapshotNames.NewId();
        var publishedDir = Path.Combine(_h.Options.SnapshotsDir, published);
        Directory.CreateDirectory(publishedDir);
        await _h.SnapshotRows.InsertAsync(new SnapshotRecord
        {
            Id = published, Tag = "kept", Kind = SnapshotKind.Snapshot, Image = "base", Vcpus = 1, MemoryMiB = 256,
            Dir = publishedDir, CreatedAt = DateTimeOffset.UtcNow,
        }, CancellationToken.None);
        var orphan = Path.Combine(_h.Options.SnapshotsDir, SnapshotNames.NewId());
        Directory.CreateDirectory(orphan);
        await File.WriteAllTextAsync(Path.Combine(orphan, "memory.layer"), "x");
        var staging = Path.Combine(_h.Options.SnapshotsDir, ".staging", SnapshotNames.NewId());
        Directory.CreateDirectory(staging);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        Assert.True(Directory.Exists(publishedDir));
        Assert.False(Directory.Exists(orphan));
        Assert.False(Directory.Exists(Path.GetDirectoryName(staging)));
    }

    [Fact]
    public async Task An_unused_implicit_branch_snapshot_left_behind_is_collected()
    {
        var id = SnapshotNames.NewId();
        var dir = Path.Combine(_h.Options.SnapshotsDir, id);
        Directory.CreateDirectory(dir);
        await _h.SnapshotRows.InsertAsync(new SnapshotRecord
        {
            Id = id, Tag = "implicit", Kind = SnapshotKind.Branch, Keep = false, SourceSandboxId = SandboxId.New(),
            Image = "base", Vcpus = 1, MemoryMiB = 256, Dir = dir, CreatedAt = DateTimeOffset.UtcNow,
        }, CancellationToken.None);

        await _h.Recovery.RecoverAsync(CancellationToken.None);

        Assert.Null(await _h.SnapshotRowAsync(id));
        Assert.False(Directory.Exists(dir));
    }

    private async Task<SandboxRecord> InsertAsync(SandboxState state, int? pid = null)
    {
        var id = SandboxId.New();
        var dir = Path.Combine(_h.Options.SandboxesDir, id);
        Directory.CreateDirectory(dir);
        await File.WriteAllBytesAsync(Path.Combine(dir, "disk.qcow2"), []);
        var row = new SandboxRecord
        {
            Id = id, State = state, Image = "base", Accel = "tcg", RuntimeDir = dir, Pid = pid,
            DiskPath = Path.Combine(dir, "disk.qcow2"), MemoryFile = Path.Combine(dir, "memory"),
            CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        };
        await _h.SandboxRows.InsertAsync(row, CancellationToken.None);
        return row;
    }
}
