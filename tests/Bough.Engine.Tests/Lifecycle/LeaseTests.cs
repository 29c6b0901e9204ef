using Bough.Contracts;
using Bough.Engine.Lifecycle;

namespace Bough.Engine.Tests.Lifecycle;

/// <summary>Per-sandbox lifecycle leases and the daemon-wide capture slots, through the real services.</summary>
public sealed class LeaseTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync(o =>
    {
        o.BusyWait = TimeSpan.FromMilliseconds(200);
        o.CaptureSlotWait = TimeSpan.FromMilliseconds(200);
        o.MaxConcurrentCaptures = 2;
    });

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_second_operation_on_a_busy_sandbox_gets_409_naming_the_first()
    {
        var sb = await _h.CreateAsync();
        var capture = _h.Capturer.Capture.Hold(1);
        var snapshot = _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None);
        await capture.Entered.Within();

        var pause = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.PauseAsync(sb.Id, CancellationToken.None)).Within();

        Assert.Equal(ErrorCodes.SandboxBusy, pause.Code);
        Assert.Equal(409, pause.Status);
        Assert.Contains("snapshot in progress", pause.Message, StringComparison.Ordinal);
        Assert.Equal(SandboxOperation.Snapshot, _h.Registry.HolderOf(sb.Id));
        capture.Release();
        await snapshot.Within();
        Assert.Null(_h.Registry.HolderOf(sb.Id));
        // Free again: the next capture goes through.
        await _h.Branching.SnapshotAsync(sb.Id, tag: null, CancellationToken.None).Within();
    }

    [Fact]
    public async Task Different_sandboxes_do_not_wait_for_each_other()
    {
        var a = await _h.CreateAsync();
        var b = await _h.CreateAsync();
        var capture = _h.Capturer.Capture.Hold(1);
        var snapshotA = _h.Branching.SnapshotAsync(a.Id, tag: null, CancellationToken.None);
        await capture.Entered.Within();

        // Well inside BusyWait: b's snapshot does not queue behind a's.
        var snapB = await _h.Branching.SnapshotAsync(b.Id, tag: null, CancellationToken.None).Within();
        await _h.Sandboxes.DeleteAsync(b.Id, CancellationToken.None).Within();

        Assert.Equal(b.Id, snapB.SourceSandboxId);
        Assert.False(snapshotA.IsCompleted);
        capture.Release();
        await snapshotA.Within();
    }

    [Fact]
    public async Task Captures_beyond_the_slot_count_get_429_with_retry_after()
    {
        var sandboxes = new[] { await _h.CreateAsync(), await _h.CreateAsync(), await _h.CreateAsync() };
        var first = _h.Capturer.Capture.Hold(1);
        var second = _h.Capturer.Capture.Hold(2);
        var running = new[]
        {
            _h.Branching.SnapshotAsync(sandboxes[0].Id, tag: null, CancellationToken.None),
            _h.Branching.SnapshotAsync(sandboxes[1].Id, tag: null, CancellationToken.None),
        };
        await Task.WhenAll(first.Entered, second.Entered).Within();

        var third = await Assert.ThrowsAsync<BoughException>(() => _h.Branching.SnapshotAsync(sandboxes[2].Id, null, CancellationToken.None)).Within();

        Assert.Equal(ErrorCodes.TooManyCaptures, third.Code);
        Assert.Equal(429, third.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), third.RetryAfter);
        // The 429 released the third sandbox's lifecycle lease.
        Assert.Null(_h.Registry.HolderOf(sandboxes[2].Id));
        first.Release();
        second.Release();
        await Task.WhenAll(running).Within();
        // And both slots came back.
        await _h.Branching.SnapshotAsync(sandboxes[2].Id, tag: null, CancellationToken.None).Within();
    }

    [Fact]
    public async Task A_capture_slot_lease_releases_its_slot_once()
    {
        var slot = await _h.CaptureSlots.AcquireAsync(CancellationToken.None);
        slot.Dispose();
        slot.Dispose();

        using var a = await _h.CaptureSlots.AcquireAsync(CancellationToken.None);
        using var b = await _h.CaptureSlots.AcquireAsync(CancellationToken.None);
        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.CaptureSlots.AcquireAsync(CancellationToken.None));
        Assert.Equal(ErrorCodes.TooManyCaptures, ex.Code);
    }

    [Fact]
    public async Task A_capture_beyond_the_slot_count_queues_until_a_slot_frees()
    {
        var slots = new CaptureSlots(new EngineOptions { DataDir = "/nonexistent", MaxConcurrentCaptures = 1, CaptureSlotWait = TimeSpan.FromMinutes(1) });
        var first = await slots.AcquireAsync(CancellationToken.None);
        var queued = slots.AcquireAsync(CancellationToken.None);
        await Task.Delay(100);
        Assert.False(queued.IsCompleted, "the second capture must wait for the first one's slot, not fail");
        first.Dispose();
        using var second = await queued.Within();
    }

    [Fact]
    public async Task A_lifecycle_lease_is_released_once_and_guards_its_use()
    {
        const string id = "sb-aaaaaaaaaaaa";
        var lease = await _h.Registry.AcquireAsync(id, SandboxOperation.Delete, wait: null, CancellationToken.None);
        lease.EnsureHeld(id);
        Assert.Throws<InvalidOperationException>(() => lease.EnsureHeld("sb-bbbbbbbbbbbb"));

        await lease.DisposeAsync();
        lease.Dispose();

        Assert.False(lease.IsHeld);
        Assert.Throws<InvalidOperationException>(() => lease.EnsureHeld(id));
        await using var next = await _h.Registry.AcquireAsync(id, SandboxOperation.Snapshot, wait: null, CancellationToken.None);
        // Had the double dispose released twice, this one would get in too.
        var busy = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Registry.AcquireAsync(id, SandboxOperation.Pause, TimeSpan.FromMilliseconds(50), CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxBusy, busy.Code);
        Assert.Contains("snapshot in progress", busy.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_waiter_that_gives_up_leaves_the_lease_usable()
    {
        const string id = "sb-cccccccccccc";
        using var cts = new CancellationTokenSource();
        var held = await _h.Registry.AcquireAsync(id, SandboxOperation.Create, wait: null, CancellationToken.None);
        var waiter = _h.Registry.AcquireAsync(id, SandboxOperation.Delete, wait: null, cts.Token);
        Assert.False(waiter.IsCompleted);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter).Within();
        await held.DisposeAsync();

        await using var again = await _h.Registry.AcquireAsync(id, SandboxOperation.Delete, TimeSpan.FromMilliseconds(50), CancellationToken.None);
        Assert.Equal(SandboxOperation.Delete, _h.Registry.HolderOf(id));
    }

    [Fact]
    public async Task Only_a_lease_holder_may_set_a_runtime()
    {
        var sb = await _h.CreateAsync();
        var rt = _h.Runtime(sb.Id);
        var other = await _h.Registry.AcquireAsync("sb-dddddddddddd", SandboxOperation.Create, wait: null, CancellationToken.None);

        Assert.Throws<InvalidOperationException>(() => _h.Registry.Set(other, rt));
        await other.DisposeAsync();
        Assert.Throws<InvalidOperationException>(() => _h.Registry.Set(other, rt));
    }
}
