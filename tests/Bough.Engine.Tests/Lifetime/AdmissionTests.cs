using Bough.Contracts;

namespace Bough.Engine.Tests.Lifetime;

/// <summary>
/// Admission control against a stated host (HostMemoryMiB 1000 × share 0.8 = 800 MiB for guests,
/// i.e. three 256 MiB sandboxes), so the numbers do not depend on this machine.
/// </summary>
public sealed class AdmissionTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync(o =>
    {
        o.HostMemoryMiB = 1000;
        o.MaxMemoryShare = 0.8;
        o.DefaultMemoryMiB = 256;
        o.MinMemoryMiB = 16;
    });

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private Task<Sandbox> CreateAsync(int memoryMiB = 256) =>
        _h.Sandboxes.CreateAsync(new CreateSandboxRequest { MemoryMiB = memoryMiB }, CancellationToken.None);

    [Fact]
    public async Task A_create_past_the_memory_share_is_503_capacity_exceeded_saying_what_is_short()
    {
        for (var i = 0; i < 3; i++) await CreateAsync();

        var ex = await Assert.ThrowsAsync<BoughException>(() => CreateAsync());

        Assert.Equal(ErrorCodes.CapacityExceeded, ex.Code);
        Assert.Equal(503, ex.Status);
        Assert.Contains("guest memory: 768 MiB committed and 256 MiB more would pass 800 MiB", ex.Message, StringComparison.Ordinal);
        Assert.Contains("32 MiB are free", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, (await _h.RowsAsync()).Count); // nothing was started for the refused one
        Assert.Equal(3, _h.Launcher.Boot.Calls);
        await CreateAsync(32); // what is free still fits
    }

    [Fact]
    public async Task Deleting_or_pausing_a_sandbox_gives_its_memory_back_and_a_resume_is_admitted_again()
    {
        var a = await CreateAsync();
        var b = await CreateAsync();
        await CreateAsync();
        await _h.Sandboxes.DeleteAsync(b.Id, CancellationToken.None);
        await _h.Branching.PauseAsync(a.Id, CancellationToken.None);
        await CreateAsync();
        await CreateAsync(); // a's and b's room both came back

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.ResumeAsync(a.Id, CancellationToken.None));
        Assert.Equal(ErrorCodes.CapacityExceeded, ex.Code);
        Assert.Contains($"resume sandbox {a.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Equal("paused", (await _h.Sandboxes.GetAsync(a.Id, CancellationToken.None)).State);
    }

    [Fact]
    public async Task The_sandbox_count_limit_is_enforced_too()
    {
        await using var h = await EngineHarness.StartAsync(o => o.MaxSandboxes = 2);
        await h.CreateAsync();
        await h.CreateAsync();

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.CreateAsync());

        Assert.Equal(ErrorCodes.CapacityExceeded, ex.Code);
        Assert.Contains("sandboxes: 2 have a VM and 1 more would pass the limit of 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_creates_cannot_both_take_the_last_room()
    {
        var holds = Enumerable.Range(1, 3).Select(n => _h.Launcher.Boot.Hold(n)).ToList();
        var creates = Enumerable.Range(0, 10).Select(_ => Task.Run(() => CreateAsync())).ToList();
        foreach (var hold in holds) await hold.Entered.Within();

        // The other seven are refused while none of the three admitted has booted yet.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (creates.Count(c => c.IsCompleted) < 7 && sw.Elapsed < EngineHarness.Patience) await Task.Delay(10);
        await Task.Delay(50); // room for an eighth to be wrongly admitted
        var refused = creates.Count(c => c.IsFaulted && c.Exception!.InnerException is BoughException { Code: ErrorCodes.CapacityExceeded });
        Assert.Equal(7, refused);
        Assert.Equal(3, creates.Count(c => !c.IsCompleted)); // parked in boot

        foreach (var hold in holds) hold.Release();
        await Task.WhenAll(creates.Where(c => !c.IsFaulted)).Within();
        Assert.Equal(3, creates.Count(c => c.IsCompletedSuccessfully));
        Assert.Equal(3, _h.Launcher.Boot.Calls);
        Assert.Equal((3, 768L), _h.Admission.Committed());
    }

    [Fact]
    public async Task A_failed_create_gives_its_reservation_back()
    {
        await CreateAsync();
        await CreateAsync();
        _h.Launcher.Boot.Fail(3, () => new IOException("fake: QEMU did not start"));
        await Assert.ThrowsAsync<BoughException>(() => CreateAsync());

        Assert.Equal((2, 512L), _h.Admission.Committed());
        await CreateAsync();
    }

    [Fact]
    public async Task A_branch_counts_all_its_children_and_is_refused_before_it_captures()
    {
        var source = await CreateAsync();

        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 3 }, CancellationToken.None));

        Assert.Equal(ErrorCodes.CapacityExceeded, ex.Code);
        Assert.Contains($"branch 3 children from {source.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, _h.Capturer.Capture.Calls);
        var ok = await _h.Branching.BranchAsync(source.Id, new BranchRequest { Count = 2 }, CancellationToken.None);
        Assert.Equal(2, ok.Children.Count);
        Assert.Equal((3, 768L), _h.Admission.Committed());
    }

    [Fact]
    public async Task Starting_from_a_snapshot_counts_every_sandbox_asked_for()
    {
        var source = await CreateAsync();
        var snap = await _h.Branching.SnapshotAsync(source.Id, "s", CancellationToken.None);

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.CreateFromSnapshotAsync(
            new CreateSandboxRequest { Snapshot = snap.Id, Count = 3 }, CancellationToken.None));

        Assert.Equal(ErrorCodes.CapacityExceeded, ex.Code);
        Assert.Equal(0, _h.Launcher.Restore.Calls);
    }
}
