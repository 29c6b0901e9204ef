using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using Bough.E2b.Envd.Connect;
using Bough.Engine;
using Microsoft.Extensions.Logging;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// The watchers behind envd's polling API (<c>CreateWatcher</c> / <c>GetWatcherEvents</c> /
/// <c>RemoveWatcher</c>, which E2B's Python SDK uses; the JS SDK streams with WatchDir instead).
/// Each one consumes the engine's watch in the background and buffers its events until polled.
/// A watcher belongs to its sandbox (another sandbox's id does not find it); it ends when removed,
/// when its directory or sandbox goes away (its next poll reports why and forgets it), or with the daemon.
/// </summary>
internal sealed class PollingWatchers(IGuestProcesses guest, ILogger<PollingWatchers> log) : IAsyncDisposable
{
    /// <summary>Watchers alive at once, daemon-wide: each holds a guest inotify watch and a buffer.</summary>
    public const int MaxWatchers = 256;

    /// <summary>Events buffered per watcher between polls; past it the oldest are dropped (a client that never polls cannot grow the daemon).</summary>
    public const int MaxBufferedEvents = 10_000;

    private readonly ConcurrentDictionary<string, Watcher> _watchers = new(StringComparer.Ordinal);

    /// <summary>Starts a watch and returns its id once the guest's watch is in place (so no later change is missed).</summary>
    public async Task<string> CreateAsync(string sandboxId, string path, bool recursive, CancellationToken ct)
    {
        if (_watchers.Count >= MaxWatchers)
            throw new ConnectException(ConnectError.ResourceExhausted, $"too many watchers ({MaxWatchers}); remove some first");
        var watcher = new Watcher(sandboxId);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Pump = PumpAsync(watcher, path, recursive, started);
        using (ct.Register(() => started.TrySetCanceled(ct)))
        {
            try
            {
                await started.Task;
            }
            catch
            {
                await watcher.StopAsync();
                throw;
            }
        }
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        _watchers[id] = watcher;
        return id;
    }

    /// <summary>The events since the last poll; a watcher that ended reports its failure once and is forgotten.</summary>
    public IReadOnlyList<FilesystemEvent> Drain(string sandboxId, string watcherId)
    {
        var watcher = Find(sandboxId, watcherId);
        var events = new List<FilesystemEvent>();
        while (watcher.Events.Reader.TryRead(out var e))
            events.Add(e);
        if (events.Count == 0 && watcher.Failure is { } failure && _watchers.TryRemove(watcherId, out _))
            throw failure;
        return events;
    }

    public async Task RemoveAsync(string sandboxId, string watcherId)
    {
        var watcher = Find(sandboxId, watcherId);
        if (_watchers.TryRemove(watcherId, out _))
            await watcher.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _watchers.Keys)
            if (_watchers.TryRemove(id, out var watcher))
                await watcher.StopAsync();
    }

    private Watcher Find(string sandboxId, string watcherId) =>
        _watchers.TryGetValue(watcherId ?? "", out var w) && w.SandboxId == sandboxId
            ? w
            : throw new ConnectException(ConnectError.NotFound, $"watcher '{watcherId}' not found");

    private async Task PumpAsync(Watcher watcher, string path, bool recursive, TaskCompletionSource started)
    {
        await Task.Yield(); // the caller registers the pump before it runs
        try
        {
            await foreach (var change in guest.WatchAsync(watcher.SandboxId, path, recursive, null, watcher.Stop.Token))
            {
                if (change.Kind == FileChangeKind.Started)
                    started.TrySetResult();
                else if (change.Name is { } name)
                    watcher.Events.Writer.TryWrite(new FilesystemEvent(name, WatchDirMethod.EventType(change.Kind), null));
            }
            watcher.Failure = new ConnectException(ConnectError.NotFound, $"the watched directory {path} went away");
        }
        catch (OperationCanceledException) when (watcher.Stop.IsCancellationRequested)
        {
            started.TrySetCanceled(watcher.Stop.Token);
        }
        catch (Exception ex)
        {
            log.LogDebug(ex, "watcher of {Path} in sandbox {Id} ended", path, watcher.SandboxId);
            watcher.Failure = ex;
            started.TrySetException(ex);
        }
        finally
        {
            started.TrySetException(new ConnectException(ConnectError.NotFound, $"the watch of {path} ended before it started"));
        }
    }

    private sealed class Watcher(string sandboxId)
    {
        public string SandboxId { get; } = sandboxId;
        public CancellationTokenSource Stop { get; } = new();
        public Channel<FilesystemEvent> Events { get; } = Channel.CreateBounded<FilesystemEvent>(
            new BoundedChannelOptions(MaxBufferedEvents) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = false });
        public Task Pump { get; set; } = Task.CompletedTask;
        public volatile Exception? Failure;

        public async Task StopAsync()
        {
            await Stop.CancelAsync();
            await Pump.ContinueWith(static _ => { }, TaskScheduler.Default);
            Stop.Dispose();
        }
    }
}
