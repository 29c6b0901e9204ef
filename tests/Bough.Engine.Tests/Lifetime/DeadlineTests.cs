using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Tests.Lifetime;

/// <summary>Sandbox lifetimes: deadlines set at create, changed later, enforced with the fake clock, kept across a restart.</summary>
public sealed class DeadlineTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private Task<Sandbox> CreateAsync(int? timeoutSeconds, string? onTimeout = null) =>
        _h.Sandboxes.CreateAsync(new CreateSandboxRequest { TimeoutSeconds = timeoutSeconds, OnTimeout = onTimeout }, CancellationToken.None);

    private Task<DateTimeOffset?> PassAsync() => _h.Deadlines.ExpireDueAsync(CancellationToken.None);

    [Fact]
    public async Task A_kill_deadline_deletes_the_sandbox_once_it_has_passed_and_not_before()
    {
        var t0 = _h.Time.GetUtcNow();
        var sb = await CreateAsync(60);
        Assert.Equal(t0.AddSeconds(60), sb.EndAt);
        Assert.Equal("kill", sb.OnTimeout);
        Assert.Equal(t0.AddSeconds(60), (await _h.RowAsync(sb.Id))!.EndAt); // in the catalog: it survives restarts

        _h.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(t0.AddSeconds(60), await PassAsync()); // the next wake-up is the deadline
        Assert.NotNull(await _h.RowAsync(sb.Id));

        _h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await PassAsync());
        Assert.Null(await _h.RowAsync(sb.Id));
        Assert.False(_h.VmOf(sb.Id).IsAlive);
    }

    [Fact]
    public async Task A_pause_deadline_pauses_and_a_paused_sandbox_has_no_deadline_until_its_resume_sets_one()
    {
        var sb = await CreateAsync(30, "pause");
        _h.Time.Advance(TimeSpan.FromSeconds(31));

        await PassAsync();

        var row = (await _h.RowAsync(sb.Id))!;
        Assert.Equal(SandboxState.Paused, row.State);
        Assert.Null(row.EndAt);
        Assert.Equal(TimeoutAction.Pause, row.OnTimeout); // remembered for the resume
        _h.Time.Advance(TimeSpan.FromHours(1));
        await PassAsync();
        Assert.Equal(SandboxState.Paused, (await _h.RowAsync(sb.Id))!.State); // paused sandboxes do not time out

        var resumed = await _h.Branching.ResumeAsync(sb.Id, new ResumeRequest { TimeoutSeconds = 10 }, CancellationToken.None);
        Assert.Equal(_h.Time.GetUtcNow().AddSeconds(10), resumed.EndAt);
        Assert.Equal("pause", resumed.OnTimeout);
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        var again = await _h.Branching.ResumeAsync(sb.Id, null, CancellationToken.None);
        Assert.Null(again.EndAt); // no request timeout and no daemon default: no deadline
    }

    [Fact]
    public async Task A_timeout_can_be_extended_and_shortened_from_now()
    {
        var t0 = _h.Time.GetUtcNow();
        var sb = await CreateAsync(60);
        _h.Time.Advance(TimeSpan.FromSeconds(50));

        var extended = await _h.Policies.SetTimeoutAsync(sb.Id, new SetTimeoutRequest { Seconds = 120 }, CancellationToken.None);
        Assert.Equal(t0.AddSeconds(170), extended.EndAt);
        _h.Time.Advance(TimeSpan.FromSeconds(20)); // past the old deadline
        await PassAsync();
        Assert.Equal(SandboxState.Running, (await _h.RowAsync(sb.Id))!.State);

        var shortened = await _h.Policies.SetTimeoutAsync(sb.Id, new SetTimeoutRequest { Seconds = 5, OnTimeout = "pause" }, CancellationToken.None);
        Assert.Equal(t0.AddSeconds(75), shortened.EndAt);
        Assert.Equal("pause", shortened.OnTimeout);
        _h.Time.Advance(TimeSpan.FromSeconds(5));
        await PassAsync();
        Assert.Equal(SandboxState.Paused, (await _h.RowAsync(sb.Id))!.State);

        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Policies.SetTimeoutAsync(sb.Id, new SetTimeoutRequest { Seconds = 5 }, CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotRunning, ex.Code);
        Assert.Contains("resume", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_timeout_extended_while_an_expiry_waits_for_the_lease_wins()
    {
        var sb = await CreateAsync(10);
        var capture = _h.Capturer.Capture.Hold(1);
        var snapshot = _h.Branching.SnapshotAsync(sb.Id, null, CancellationToken.None); // holds the sandbox's lease
        await capture.Entered.Within();
        _h.Time.Advance(TimeSpan.FromSeconds(11));
        var extend = _h.Policies.SetTimeoutAsync(sb.Id, new SetTimeoutRequest { Seconds = 600 }, CancellationToken.None); // queued first
        await Task.Delay(100);
        var pass = PassAsync(); // saw the old deadline, queued second
        await Task.Delay(200);
        Assert.False(pass.IsCompleted);

        capture.Release();
        await snapshot.Within();
        await extend.Within();
        await pass.Within();

        Assert.Equal(SandboxState.Running, (await _h.RowAsync(sb.Id))!.State); // the expiry re-checked under the lease
    }

    [Fact]
    public async Task The_clock_starts_when_the_sandbox_runs_not_when_its_create_began()
    {
        var boot = _h.Launcher.Boot.Hold(1);
        var create = CreateAsync(60);
        await boot.Entered.Within();
        _h.Time.Advance(TimeSpan.FromSeconds(100)); // a slow boot
        await PassAsync(); // a starting sandbox is not expired under its create
        boot.Release();

        var sb = await create.Within();
        Assert.Equal(_h.Time.GetUtcNow().AddSeconds(60), sb.EndAt);
    }

    [Fact]
    public async Task The_hosted_enforcer_wakes_for_a_deadline_set_while_it_sleeps()
    {
        await _h.Deadlines.StartAsync(CancellationToken.None);
        try
        {
            var sb = await CreateAsync(30);
            // Let it settle into its sleep (a timer made after an Advance counts from the advanced time,
            // which no real clock does), then one step to just before the deadline: an enforcer still in
            // the minute-long sleep it began before the create would delete only at +60 s.
            await Task.Delay(300);
            _h.Time.Advance(TimeSpan.FromSeconds(29));
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (_h.Registry.Get(sb.Id) is { Stopping: false })
            {
                Assert.True(sw.Elapsed < EngineHarness.Patience, "the enforcer never deleted the sandbox");
                Assert.True(_h.Time.GetUtcNow() < sb.EndAt!.Value.AddSeconds(29), "the enforcer slept past the deadline");
                _h.Time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(100);
            }
            await WaitForAsync(async () => await _h.RowAsync(sb.Id) is null);
        }
        finally
        {
            await _h.Deadlines.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Dead_sandboxes_are_deleted_by_a_kill_deadline_and_a_pause_deadline_lapses()
    {
        var kill = await CreateAsync(10);
        var pause = await CreateAsync(10, "pause");
        _h.VmOf(kill.Id).Crash();
        _h.VmOf(pause.Id).Crash();
        await WaitForAsync(async () => (await _h.RowsAsync()).All(r => r.State == SandboxState.Dead));
        _h.Time.Advance(TimeSpan.FromSeconds(11));

        await PassAsync();

        Assert.Null(await _h.RowAsync(kill.Id));
        var row = (await _h.RowAsync(pause.Id))!;
        Assert.Equal(SandboxState.Dead, row.State);
        Assert.Null(row.EndAt);
    }

    [Fact]
    public async Task The_daemon_default_applies_to_creates_and_branch_children_get_the_requests_timeout_not_the_sources()
    {
        await using var h = await EngineHarness.StartAsync(o => o.DefaultTimeout = TimeSpan.FromSeconds(300));
        var t0 = h.Time.GetUtcNow();
        var sb = await h.Sandboxes.CreateAsync(new CreateSandboxRequest(), CancellationToken.None);
        Assert.Equal(t0.AddSeconds(300), sb.EndAt);

        var plain = await h.Branching.BranchAsync(sb.Id, new BranchRequest(), CancellationToken.None);
        Assert.Equal(t0.AddSeconds(300), Assert.Single(plain.Children).EndAt);
        var own = await h.Branching.BranchAsync(sb.Id, new BranchRequest { TimeoutSeconds = 20, OnTimeout = "pause" }, CancellationToken.None);
        Assert.Equal(t0.AddSeconds(20), Assert.Single(own.Children).EndAt);
        Assert.Equal("pause", own.Children[0].OnTimeout);
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(-5, null)]
    [InlineData(100_000, null)] // past MaxTimeout below
    [InlineData(10, "stop")]
    public async Task Bad_lifetimes_are_refused_naming_the_field(int seconds, string? onTimeout)
    {
        await using var h = await EngineHarness.StartAsync(o => o.MaxTimeout = TimeSpan.FromHours(24));
        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.CreateAsync(
            new CreateSandboxRequest { TimeoutSeconds = seconds, OnTimeout = onTimeout }, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
        Assert.Contains(onTimeout is null ? "timeoutSeconds" : "onTimeout", ex.Message, StringComparison.Ordinal);
        Assert.Empty(await h.RowsAsync());
    }

    [Fact]
    public async Task A_deadline_survives_a_daemon_crash_and_the_next_daemon_enforces_it()
    {
        var sb = await CreateAsync(60, "pause");
        var row = (await _h.RowAsync(sb.Id))!;
        await _h.CrashAsync();

        await using var next = await EngineHarness.StartAsync(root: _h.Root);
        next.Launcher.LeaveRunning(row.RuntimeDir, row.DiskPath); // the VM outlived the daemon
        await next.Recovery.RecoverAsync(CancellationToken.None);
        Assert.Equal(SandboxState.Running, (await next.RowAsync(sb.Id))!.State);
        Assert.Equal(sb.EndAt, (await next.Sandboxes.GetAsync(sb.Id, CancellationToken.None)).EndAt);

        next.Time.Advance(TimeSpan.FromSeconds(61));
        await next.Deadlines.ExpireDueAsync(CancellationToken.None);

        Assert.Equal(SandboxState.Paused, (await next.RowAsync(sb.Id))!.State);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < EngineHarness.Patience, "condition not met in time");
            await Task.Delay(10);
        }
    }
}
