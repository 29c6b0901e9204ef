using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// watch: REPLY {watching} once the watches are in place (errors such as file_not_found come
/// before it, as END), then REPLY {events} batches as changes happen and REPLY {keepalive} after
/// each idle interval, until the host cancels (END cancelled), the watched directory goes away
/// (END {}) or events were lost (END io_error).
/// </summary>
internal static class WatchOperation
{
    /// <summary>Events per REPLY at most; with names up to PATH_MAX this stays under the 64 KiB REPLY cap.</summary>
    private const int BatchBytes = 48 * 1024;

    public static async Task<EndMessage> RunAsync(OpenRequest request, AgentStream stream)
    {
        string path = FileOperations.RequirePath(request);
        var options = request.Watch ?? new WatchRequest();
        if (options.KeepaliveMs is { } k && (k < ProcessLimits.MinKeepaliveMs || k > ProcessLimits.MaxKeepaliveMs))
            throw new AgentError(ErrorCodes.BadRequest, $"keepaliveMs must be {ProcessLimits.MinKeepaliveMs}..{ProcessLimits.MaxKeepaliveMs}");
        using var watcher = new InotifyWatcher(path, options.Recursive);
        await stream.SendReplyAsync(new ReplyMessage { Watching = true }).ConfigureAwait(false);
        watcher.Start();
        var events = watcher.Events;
        while (true)
        {
            bool more;
            if (options.KeepaliveMs is { } keepalive)
            {
                // A linked token rather than a timeout on the task: the channel's waiter is unregistered on every tick.
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stream.Token);
                tick.CancelAfter(TimeSpan.FromMilliseconds(keepalive));
                try { more = await events.WaitToReadAsync(tick.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (!stream.Token.IsCancellationRequested)
                {
                    await stream.SendReplyAsync(new ReplyMessage { Keepalive = true }).ConfigureAwait(false);
                    continue;
                }
            }
            else more = await events.WaitToReadAsync(stream.Token).ConfigureAwait(false);
            if (!more) return new EndMessage();
            var batch = new List<WatchEventDto>();
            int bytes = 0;
            while (events.TryPeek(out var e))
            {
                int size = 48 + 6 * e.Name.Length; // 6 bytes a character covers \u escapes
                if (batch.Count > 0 && bytes + size > BatchBytes) break;
                events.TryRead(out _);
                batch.Add(e);
                bytes += size;
            }
            if (batch.Count > 0) await stream.SendReplyAsync(new ReplyMessage { Events = batch }).ConfigureAwait(false);
        }
    }
}
