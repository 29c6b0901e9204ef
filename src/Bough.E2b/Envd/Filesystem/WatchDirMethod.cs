using Bough.E2b.Envd.Connect;
using Bough.E2b.Envd.Process;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// <c>filesystem.Filesystem/WatchDir</c> (what the SDK's <c>files.watchDir</c> calls): <c>start</c>
/// once the guest's inotify watch is in place (the SDK waits for it), then one <c>filesystem</c>
/// event per change, named relative to the watched directory, with the entry when
/// <c>includeEntry</c> asks and it still exists, and <c>keepalive</c> while quiet. The stream ends
/// cleanly when the directory itself goes away, with <c>deadline_exceeded</c> at the call's deadline.
/// </summary>
internal sealed class WatchDirMethod(IGuestProcesses guest) : IConnectStreamMethod
{
    public string Name => "filesystem.Filesystem/WatchDir";

    public async Task StreamAsync(ConnectCall call, ConnectStream stream)
    {
        var request = call.Read<WatchRequest>();
        var env = call.Request;
        var path = env.Resolve(request.Path);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(call.Aborted);
        if (call.Deadline is { } d)
            deadline.CancelAfter(d);
        var ct = deadline.Token;
        try
        {
            var changes = guest.WatchAsync(env.Id, path, request.Recursive, ProcessStreaming.KeepaliveInterval(env), ct);
            await foreach (var change in changes.WithCancellation(ct))
            {
                var message = change.Kind switch
                {
                    FileChangeKind.Started => new WatchDirResponse { Start = new WatchStart() },
                    FileChangeKind.Keepalive => new WatchDirResponse { Keepalive = new WatchKeepAlive() },
                    _ when change.Name is { } name => new WatchDirResponse
                    {
                        Filesystem = new FilesystemEvent(name, EventType(change.Kind),
                            request.IncludeEntry ? await EntryAsync(env.Id, path, name, change.Kind, ct) : null),
                    },
                    _ => null,
                };
                if (message is not null)
                    await stream.SendAsync(message, ct);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !call.Aborted.IsCancellationRequested)
        {
            throw new ConnectException(ConnectError.DeadlineExceeded, "the watch's deadline (Connect-Timeout-Ms) passed");
        }
    }

    /// <summary>The proto's <c>EventType</c> name for a change.</summary>
    internal static string EventType(FileChangeKind kind) => kind switch
    {
        FileChangeKind.Create => "EVENT_TYPE_CREATE",
        FileChangeKind.Write => "EVENT_TYPE_WRITE",
        FileChangeKind.Remove => "EVENT_TYPE_REMOVE",
        FileChangeKind.Rename => "EVENT_TYPE_RENAME",
        FileChangeKind.Chmod => "EVENT_TYPE_CHMOD",
        _ => "EVENT_TYPE_UNSPECIFIED",
    };

    /// <summary>The changed entry, if it is still there (a removed or renamed-away one is not).</summary>
    private async Task<EntryInfo?> EntryAsync(string id, string dir, string name, FileChangeKind kind, CancellationToken ct)
    {
        if (kind == FileChangeKind.Remove)
            return null;
        var path = dir.TrimEnd('/') + "/" + name;
        try
        {
            return EntryInfo.From(await guest.StatAsync(id, path, ct), path);
        }
        catch (BoughException ex) when (ex.Status == 404)
        {
            return null;
        }
    }
}
