using Bough.Contracts;
using Bough.Engine.Images;

namespace Bough.Engine.Tests.Images;

/// <summary>
/// The name lock of <see cref="ImageService"/> covers catalog decisions only: a create (which takes a
/// boot lease through <see cref="ImageService.AcquireAsync"/>) never waits for a re-publish's build,
/// and delete and acquire still exclude each other. Real catalog, importer and builder; no VMs.
/// </summary>
public sealed class ImagePublishLockTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Acquire_returns_the_published_image_at_once_while_a_republish_of_its_name_is_building()
    {
        using var h = await ImageServiceHarness.StartAsync();
        await h.ImportAsync("app", h.Layout("v1"));
        BootImage v1;
        using (var first = await h.Images.AcquireAsync("app", CancellationToken.None)) v1 = first.Image;

        Task<ImageAnswer> republish;
        ImageLease lease;
        using (var hold = h.HoldAgent())
        {
            republish = h.ImportAsync("app", h.Layout("v2"));
            await WaitUntilAsync(h.BuildReachedAgent, "the re-publish to reach /.bough injection");
            Assert.False(republish.IsCompleted);

            // What a `create --image app` does first. Before the fix it waited for the whole build.
            lease = await h.Images.AcquireAsync("app", CancellationToken.None).WaitAsync(Prompt);
            Assert.Equal(v1.DiskPath, lease.Image.DiskPath);
            Assert.True(File.Exists(lease.Image.DiskPath));
            Assert.False(republish.IsCompleted);
            await hold.Release();
        }

        var answer = await republish.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(ImageOutcome.Created, answer.Outcome);
        using (var next = await h.Images.AcquireAsync("app", CancellationToken.None))
        {
            Assert.NotEqual(v1.DiskPath, next.Image.DiskPath);
            // Overlays of sandboxes created meanwhile are backed by the old disk, by path: it stays.
            Assert.True(File.Exists(v1.DiskPath));
        }
        lease.Dispose();
    }

    [Fact]
    public async Task A_held_lease_makes_delete_answer_image_in_use_and_delete_wins_once_it_is_released()
    {
        using var h = await ImageServiceHarness.StartAsync();
        await h.ImportAsync("app", h.Layout("v1"));

        var lease = await h.Images.AcquireAsync("app", CancellationToken.None);
        var e = await Assert.ThrowsAsync<BoughException>(() => h.Images.DeleteAsync("app", CancellationToken.None));
        Assert.Equal(ErrorCodes.ImageInUse, e.Code);
        Assert.True(File.Exists(lease.Image.DiskPath));

        lease.Dispose();
        await h.Images.DeleteAsync("app", CancellationToken.None);
        Assert.False(File.Exists(lease.Image.DiskPath));
        var gone = await Assert.ThrowsAsync<BoughException>(() => h.Images.AcquireAsync("app", CancellationToken.None));
        Assert.Equal(ErrorCodes.ImageNotFound, gone.Code);
    }

    [Fact]
    public async Task Concurrent_acquires_and_a_delete_never_both_win()
    {
        using var h = await ImageServiceHarness.StartAsync();
        var layout = h.Layout("v1");
        for (var round = 0; round < 3; round++)
        {
            await h.ImportAsync("app", layout);
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var acquires = Enumerable.Range(0, 8).Select(async _ =>
            {
                await start.Task;
                try { return await h.Images.AcquireAsync("app", CancellationToken.None); }
                catch (BoughException ex) when (ex.Code == ErrorCodes.ImageNotFound) { return null; }
            }).ToList();
            var delete = Task.Run(async () =>
            {
                await start.Task;
                try { await h.Images.DeleteAsync("app", CancellationToken.None); return true; }
                catch (BoughException ex) when (ex.Code == ErrorCodes.ImageInUse) { return false; }
            });
            start.SetResult();
            var leases = (await Task.WhenAll(acquires)).OfType<ImageLease>().ToList();
            var deleted = await delete;

            // Every lease is still held here: a delete that won must have seen none of them.
            Assert.True(deleted ? leases.Count == 0 : leases.Count > 0, $"round {round}: deleted={deleted}, leases={leases.Count}");
            Assert.All(leases, l => Assert.True(File.Exists(l.Image.DiskPath)));
            foreach (var l in leases) l.Dispose();
            if (!deleted) await h.Images.DeleteAsync("app", CancellationToken.None);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("timed out waiting for " + what);
            await Task.Delay(20);
        }
    }
}
