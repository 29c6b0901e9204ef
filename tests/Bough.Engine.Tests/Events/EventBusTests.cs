using Bough.Contracts;
using Bough.Engine.Events;

namespace Bough.Engine.Tests.Events;

/// <summary>
/// The event stream of the real engine (<see cref="IEngineEvents"/>): what a create, a snapshot, a pause, a crash
/// and a delete publish, in which order, and that a subscriber that does not read never holds the engine up.
/// </summary>
public sealed class EventBusTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Create_snapshot_and_delete_publish_their_events_in_order()
    {
        await using var events = await SubscribeAsync();

        var sb = await _h.CreateAsync();
        var created = await NextAsync(events);
        var running = await NextAsync(events);
        var snap = await _h.Branching.SnapshotAsync(sb.Id, "ev-tag", CancellationToken.None);
        var captured = await NextAsync(events);
        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        var stopping = await NextAsync(events);
        var deleted = await NextAsync(events);

        Assert.Equal(EventTypes.SandboxCreated, created.Type);
        Assert.Equal(sb.Id, created.Id);
        Assert.Equal(SandboxStates.Starting, created.Sandbox!.State);
        Assert.Equal(EventTypes.SandboxState, running.Type);
        Assert.Equal(SandboxStates.Running, running.Sandbox!.State);
        Assert.Equal(EventTypes.SnapshotCreated, captured.Type);
        Assert.Equal(snap.Id, captured.Id);
        Assert.Equal("ev-tag", captured.Snapshot!.Tag);
        Assert.Equal("snapshot", captured.Snapshot.Kind);
        Assert.Equal(sb.Id, captured.Snapshot.SourceSandboxId);
        Assert.Equal(4096, captured.Snapshot.MemoryBytes);
        Assert.Equal(7, captured.Snapshot.PauseMs);
        Assert.Equal(SandboxStates.Stopping, stopping.Sandbox!.State);
        Assert.Equal(EventTypes.SandboxDeleted, deleted.Type);
        Assert.Equal(sb.Id, deleted.Id);
        long[] seqs = [created.Sequence, running.Sequence, captured.Sequence, stopping.Sequence, deleted.Sequence];
        Assert.Equal(Enumerable.Range(1, 5).Select(i => (long)i), seqs); // one bus, nothing else published
        Assert.All([created, running, captured, stopping, deleted], e => Assert.Equal(_h.Time.GetUtcNow(), e.Timestamp));
    }

    [Fact]
    public async Task Pause_and_a_crashed_vm_publish_their_states()
    {
        var paused = await _h.CreateAsync();
        var crashed = await _h.CreateAsync();
        await using var events = await SubscribeAsync();

        await _h.Branching.PauseAsync(paused.Id, CancellationToken.None);
        var pauseSnapshot = await NextAsync(events);
        var pauseState = await NextAsync(events);
        _h.VmOf(crashed.Id).Crash();
        var dead = await NextAsync(events);

        Assert.Equal(EventTypes.SnapshotCreated, pauseSnapshot.Type);
        Assert.Equal("pause", pauseSnapshot.Snapshot!.Kind);
        Assert.Equal((paused.Id, SandboxStates.Paused), (pauseState.Id, pauseState.Sandbox!.State));
        Assert.Equal((crashed.Id, SandboxStates.Dead), (dead.Id, dead.Sandbox!.State));
        Assert.Contains("exited unexpectedly", dead.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_subscriber_that_does_not_read_neither_blocks_a_create_nor_misses_the_resync()
    {
        var bus = _h.Get<EventBus>();
        await using var stalled = await SubscribeAsync();

        // Fill the stalled subscriber's queue past its capacity, then create: the engine must not wait for it.
        for (var i = 0; i < EventBus.QueueCapacity + 10; i++) bus.Publish(new BoughEvent { Type = "test.filler" });
        var sb = await _h.CreateAsync().Within();

        var resync = await NextAsync(stalled);
        Assert.Equal(EventTypes.Resync, resync.Type);
        var rest = new List<BoughEvent>();
        for (var e = await NextAsync(stalled); ; e = await NextAsync(stalled))
        {
            rest.Add(e);
            if (e.Type == EventTypes.SandboxState) break;
        }
        // The oldest went; what is left is the newest, in order, ending with the create's events.
        Assert.Equal(EventBus.QueueCapacity, rest.Count);
        Assert.True(resync.Sequence < rest[0].Sequence);
        Assert.Equal(Enumerable.Range(0, rest.Count).Select(i => rest[0].Sequence + i), rest.Select(e => e.Sequence));
        Assert.Equal([EventTypes.SandboxCreated, EventTypes.SandboxState], rest.TakeLast(2).Select(e => e.Type));
        Assert.Equal(sb.Id, rest[^1].Id);
    }

    [Fact]
    public async Task Every_subscriber_sees_the_same_sequence_and_a_late_one_starts_at_ready()
    {
        await using var first = await SubscribeAsync();
        await _h.CreateAsync();
        await using var late = await SubscribeAsync();
        var lateReady = late.Current;
        await _h.CreateAsync();

        var firstSeen = new List<long>();
        for (var i = 0; i < 4; i++) firstSeen.Add((await NextAsync(first)).Sequence);
        var lateSeen = new List<long> { (await NextAsync(late)).Sequence, (await NextAsync(late)).Sequence };

        Assert.Equal([1L, 2, 3, 4], firstSeen);
        Assert.Equal(2, lateReady.Sequence); // ready carries the last sequence published before it
        Assert.Equal([3L, 4], lateSeen);
    }

    /// <summary>
    /// Subscribes and waits for the ready event, after which nothing published is missed. Disposing the enumerator
    /// (<c>await using</c>) ends the subscription.
    /// </summary>
    private async Task<IAsyncEnumerator<BoughEvent>> SubscribeAsync()
    {
        var events = _h.Get<IEngineEvents>().SubscribeAsync(CancellationToken.None).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync().AsTask().Within());
        Assert.Equal(EventTypes.Ready, events.Current.Type);
        return events;
    }

    private static async Task<BoughEvent> NextAsync(IAsyncEnumerator<BoughEvent> events)
    {
        Assert.True(await events.MoveNextAsync().AsTask().Within());
        return events.Current;
    }
}
