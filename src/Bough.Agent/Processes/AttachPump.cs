using System.Diagnostics;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>
/// Streams one process's output to one attached stream: REPLY {pid, pty?, skipped?}, then DATA on
/// channel 1/2 from the reader's cursor (under the host's credit, so a slow host holds the
/// process back instead of losing output), REPLY {keepalive} after each idle interval, and END
/// {exit} once the process has finished and everything was sent. Cancelling the stream (or the
/// session ending) only detaches; the stream's deadline, if it fires while attached, kills the
/// process group.
/// </summary>
internal static class AttachPump
{
    public static async Task<EndMessage> RunAsync(ManagedProcess process, Attachment attachment, long skipped, AgentStream stream,
        AttachRequest? options)
    {
        bool detached = false;
        using var deadline = options?.DeadlineMs is { } ms
            ? new Timer(_ => { if (!Volatile.Read(ref detached)) process.Signal(Libc.SIGKILL, group: true, timedOut: true); },
                null, ms, Timeout.Infinite)
            : null;
        try
        {
            await stream.SendReplyAsync(new ReplyMessage
            {
                Pid = process.Pid,
                Pty = process.IsPty ? true : null,
                Skipped = skipped > 0 ? skipped : null,
            }).ConfigureAwait(false);
            long keepaliveMs = options?.KeepaliveMs ?? 0;
            var idle = Stopwatch.StartNew();
            while (true)
            {
                var changed = process.Changed.Next; // taken before looking, so no change is missed
                if (process.TryRead(attachment, ProtocolConstants.MaxDataChunk, out var channel, out var data))
                {
                    await stream.SendDataAsync(channel, data).ConfigureAwait(false);
                    process.Advance(attachment, data.Count);
                    idle.Restart();
                    continue;
                }
                if (process.IsDrained(attachment)) return new EndMessage { Exit = process.Exit };
                if (keepaliveMs <= 0)
                {
                    await changed.WaitAsync(stream.Token).ConfigureAwait(false);
                    continue;
                }
                long remaining = keepaliveMs - idle.ElapsedMilliseconds;
                if (remaining <= 0)
                {
                    await stream.SendReplyAsync(new ReplyMessage { Keepalive = true }).ConfigureAwait(false);
                    idle.Restart();
                    continue;
                }
                try { await changed.WaitAsync(TimeSpan.FromMilliseconds(remaining), stream.Token).ConfigureAwait(false); }
                catch (TimeoutException) { }
            }
        }
        finally
        {
            Volatile.Write(ref detached, true);
            process.Detach(attachment);
        }
    }
}
