using Bough.AgentClient;

namespace Bough.Agent.Tests;

/// <summary>watch over real inotify: each kind of change, recursion into new directories, the end when the directory goes.</summary>
public sealed class WatchTests(AgentFixture fixture) : IClassFixture<AgentFixture>, IDisposable
{
    private readonly TempDir _dir = new("agent-watch");
    private string Root => _dir.Path;
    private AgentConnection C => fixture.Connection;

    public void Dispose() => _dir.Dispose();

    /// <summary>A watch being read in the background, its changes collected.</summary>
    private sealed class Watch : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));
        private readonly List<WatchEvent> _events = [];
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _reading;

        public Watch(AgentConnection c, string path, WatchOptions? options)
        {
            _reading = Task.Run(async () =>
            {
                await foreach (var e in c.WatchAsync(path, options, _cts.Token))
                {
                    if (e is WatchEvent.Started) _started.TrySetResult();
                    lock (_events) _events.Add(e);
                }
            });
        }

        public List<WatchEvent.Change> Changes { get { lock (_events) return [.. _events.OfType<WatchEvent.Change>()]; } }
        public int Keepalives { get { lock (_events) return _events.Count(e => e is WatchEvent.Keepalive); } }
        public Task Reading => _reading;

        public Task StartedAsync() => Task.WhenAny(_started.Task, _reading).Unwrap().WaitAsync(TimeSpan.FromSeconds(20));

        public Task<bool> SawAsync(WatchEventKind kind, string name) =>
            Poll.UntilAsync(() => Changes.Any(c => c.Kind == kind && c.Name == name), TimeSpan.FromSeconds(10));

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            try { await _reading; } catch (OperationCanceledException) { }
            _cts.Dispose();
        }
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Each_kind_of_change_is_reported_with_its_name()
    {
        await using var watch = new Watch(C, Root, null);
        await watch.StartedAsync();
        string f = $"{Root}/f.txt";
        await File.WriteAllTextAsync(f, "");
        Assert.True(await watch.SawAsync(WatchEventKind.Create, "f.txt"), Describe(watch));
        await File.AppendAllTextAsync(f, "more");
        Assert.True(await watch.SawAsync(WatchEventKind.Write, "f.txt"), Describe(watch));
        File.SetUnixFileMode(f, UnixFileMode.UserRead);
        Assert.True(await watch.SawAsync(WatchEventKind.Chmod, "f.txt"), Describe(watch));
        File.Move(f, $"{Root}/g.txt");
        Assert.True(await watch.SawAsync(WatchEventKind.Rename, "f.txt"), Describe(watch));
        Assert.True(await watch.SawAsync(WatchEventKind.Create, "g.txt"), Describe(watch));
        File.Delete($"{Root}/g.txt");
        Assert.True(await watch.SawAsync(WatchEventKind.Remove, "g.txt"), Describe(watch));
    }

    [Fact]
    public async Task Recursive_watches_follow_new_directories_and_plain_ones_do_not()
    {
        Directory.CreateDirectory($"{Root}/existing");
        await using var recursive = new Watch(C, Root, new WatchOptions { Recursive = true });
        await using var plain = new Watch(C, Root, null);
        await Task.WhenAll(recursive.StartedAsync(), plain.StartedAsync());

        await File.WriteAllTextAsync($"{Root}/existing/a", "x");
        Assert.True(await recursive.SawAsync(WatchEventKind.Create, "existing/a"), Describe(recursive));
        Directory.CreateDirectory($"{Root}/made");
        Assert.True(await recursive.SawAsync(WatchEventKind.Create, "made"), Describe(recursive));
        await Task.Delay(200); // let the agent add the watch on the new directory
        await File.WriteAllTextAsync($"{Root}/made/b", "y");
        Assert.True(await recursive.SawAsync(WatchEventKind.Create, "made/b"), Describe(recursive));

        Assert.True(await plain.SawAsync(WatchEventKind.Create, "made"), Describe(plain));
        Assert.DoesNotContain(plain.Changes, c => c.Name.Contains('/'));
    }

    [Fact]
    public async Task The_watch_ends_when_its_directory_is_removed_and_missing_paths_fail()
    {
        Directory.CreateDirectory($"{Root}/gone");
        var watch = new Watch(C, $"{Root}/gone", new WatchOptions { KeepaliveInterval = TimeSpan.FromMilliseconds(200) });
        await using (watch)
        {
            await watch.StartedAsync();
            Assert.True(await Poll.UntilAsync(() => watch.Keepalives >= 2, TimeSpan.FromSeconds(10)), "no keepalives on an idle watch");
            Directory.Delete($"{Root}/gone");
            await watch.Reading.WaitAsync(TimeSpan.FromSeconds(10)); // ends cleanly, no exception
        }

        var missing = await Assert.ThrowsAsync<AgentException>(async () =>
        {
            await foreach (var _ in C.WatchAsync($"{Root}/nope", null, ExecHelpers.Timeout(10))) { }
        });
        Assert.Equal("file_not_found", missing.Code);
    }

    private static string Describe(Watch w) => string.Join(", ", w.Changes.Select(c => $"{c.Kind}:{c.Name}"));
}
