using System.Threading.Channels;
using Bough.Contracts;
using Bough.Engine.Events;
using Bough.Images;

namespace Bough.Engine.Tests.Images;

/// <summary>
/// Image pulls, imports and deletions on the event stream: a real <see cref="EventBus"/> under a real
/// <see cref="Bough.Engine.Images.ImageService"/> (SQLite catalog, importer, mkfs.ext4, qemu-img); no VMs.
/// </summary>
public sealed class ImageEventTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task An_import_publishes_progress_then_created_and_a_delete_publishes_deleted()
    {
        using var h = await ImageServiceHarness.StartAsync();
        await using var events = await Subscription.StartAsync(h.Events);
        var layout = h.Layout("v1");

        // The build is held at the agent copy, so the import is still running a quarter second after its layers
        // are known and the throttle's trailing publication carries them, however fast this machine is.
        List<BoughEvent> first;
        using (var hold = h.HoldAgent())
        {
            var import = h.ImportAsync("app", layout);
            var untilLayers = await events.UntilAsync(e => e.Image?.Layers is { Count: 2 } || e.Type != EventTypes.ImageProgress);
            await hold.Release();
            await import;
            first = untilLayers[^1].Type == EventTypes.ImageProgress
                ? [.. untilLayers, .. await events.UntilAsync(e => e.Type == EventTypes.ImageCreated)]
                : untilLayers;
        }

        var progress = first.Take(first.Count - 1).ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, e => Assert.Equal((EventTypes.ImageProgress, "app", ImageStates.Pulling), (e.Type, e.Id, e.Image!.State)));
        Assert.Equal("archive", progress[0].Image!.Source);
        // The layers (busybox and the tagged file) with their digests, sizes and states.
        var withLayers = progress.Where(e => e.Image!.Layers is { Count: 2 }).ToList();
        Assert.NotEmpty(withLayers);
        Assert.All(withLayers.SelectMany(e => e.Image!.Layers!), l =>
        {
            Assert.StartsWith("sha256:", l.Digest, StringComparison.Ordinal);
            Assert.True(l.Size > 0 && l.Done <= l.Size, $"{l.Digest}: {l.Done}/{l.Size}");
        });
        // Throttled: consecutive progress events of one image at least a quarter second apart (the bus stamps them).
        Assert.All(progress.Zip(progress.Skip(1)), p =>
            Assert.True(p.Second.Timestamp - p.First.Timestamp >= TimeSpan.FromMilliseconds(230), $"{p.First.Timestamp:ss.fff} then {p.Second.Timestamp:ss.fff}"));
        var created = first[^1];
        Assert.Equal(("app", ImageStates.Ready, (string?)null), (created.Id, created.Image!.State, created.Reason));
        Assert.StartsWith("sha256:", created.Image.Digest, StringComparison.Ordinal);

        // Nothing of that import after its outcome (a pending trailing progress is dropped).
        await Task.Delay(ImageEventsInterval * 3);
        Assert.Empty(events.Pending());

        // The same content again: still an outcome, marked unchanged.
        await h.ImportAsync("app", layout);
        var again = await events.UntilAsync(e => e.Type == EventTypes.ImageCreated);
        Assert.Equal("unchanged", again[^1].Reason);
        Assert.Equal(created.Image.Digest, again[^1].Image!.Digest);

        await h.Images.DeleteAsync("app", CancellationToken.None);
        var deleted = await events.UntilAsync(e => e.Type == EventTypes.ImageDeleted);
        Assert.Single(deleted);
        Assert.Equal(("app", "deleted"), (deleted[0].Id, deleted[0].Reason));
        var seqs = first.Concat(again).Concat(deleted).Select(e => e.Sequence).ToList();
        Assert.Equal(seqs.Order(), seqs);
    }

    [Fact]
    public async Task A_failed_import_publishes_failed_with_the_error_and_forgetting_it_publishes_deleted()
    {
        using var h = await ImageServiceHarness.StartAsync(new ImageLimits { MaxImageEntries = 5 });
        await using var events = await Subscription.StartAsync(h.Events);

        await Assert.ThrowsAsync<BoughException>(() => h.ImportAsync("app", h.Layout("v1")));
        var seen = await events.UntilAsync(e => e.Type == EventTypes.ImageFailed);

        Assert.Equal(EventTypes.ImageProgress, seen[0].Type);
        var failed = seen[^1];
        Assert.Equal(("app", ImageStates.Failed, ErrorCodes.LayerRejected), (failed.Id, failed.Image!.State, failed.Image.Error!.Code));
        Assert.Null(failed.Reason);

        await h.Images.DeleteAsync("app", CancellationToken.None);
        var forgotten = await events.UntilAsync(e => e.Type == EventTypes.ImageDeleted);
        Assert.Equal("failure forgotten", forgotten[^1].Reason);
    }

    [Fact]
    public void Image_events_are_the_image_category_of_the_filter()
    {
        Assert.Equal("image", EventTypes.Category(EventTypes.ImageProgress));
        Assert.Equal("image", EventTypes.Category(EventTypes.ImageCreated));
        Assert.Equal("image", EventTypes.Category(EventTypes.ImageFailed));
        Assert.Equal("image", EventTypes.Category(EventTypes.ImageDeleted));
    }

    private static TimeSpan ImageEventsInterval => Bough.Engine.Images.ImageEvents.ProgressInterval;

    /// <summary>One subscriber of the bus, pumped into a queue the test reads with a deadline.</summary>
    private sealed class Subscription : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Channel<BoughEvent> _queue = Channel.CreateUnbounded<BoughEvent>();
        private Task _pump = Task.CompletedTask;

        public static async Task<Subscription> StartAsync(EventBus bus)
        {
            var s = new Subscription();
            var e = bus.SubscribeAsync(s._stop.Token).GetAsyncEnumerator(s._stop.Token);
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(EventTypes.Ready, e.Current.Type);
            s._pump = s.PumpAsync(e);
            return s;
        }

        private async Task PumpAsync(IAsyncEnumerator<BoughEvent> e)
        {
            await using (e)
            {
                try
                {
                    while (await e.MoveNextAsync()) _queue.Writer.TryWrite(e.Current);
                }
                catch (OperationCanceledException) { }
            }
        }

        /// <summary>Events up to and including the first that matches.</summary>
        public async Task<List<BoughEvent>> UntilAsync(Func<BoughEvent, bool> what)
        {
            using var timeout = new CancellationTokenSource(Patience);
            var seen = new List<BoughEvent>();
            while (true)
            {
                var e = await _queue.Reader.ReadAsync(timeout.Token);
                seen.Add(e);
                if (what(e)) return seen;
            }
        }

        public List<BoughEvent> Pending()
        {
            var list = new List<BoughEvent>();
            while (_queue.Reader.TryRead(out var e)) list.Add(e);
            return list;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _pump;
            _stop.Dispose();
        }
    }
}
