using System.Runtime.CompilerServices;
using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>File metadata operations: list, stat, exists, mkdir, move, remove, watch.</summary>
public sealed partial class AgentConnection
{
    /// <summary>Lists a directory within <see cref="ListLimits.Default"/>.</summary>
    public Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, CancellationToken ct) => ListAsync(path, 1, ListLimits.Default, ct);

    /// <summary>Lists a directory (direct children only).</summary>
    public Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, ListLimits limits, CancellationToken ct) => ListAsync(path, 1, limits, ct);

    /// <summary>
    /// Lists a directory down to <paramref name="depth"/> levels (1 = its children; at most 64).
    /// Symlinked directories are listed, not entered; unreadable subdirectories are skipped. Every
    /// entry's <see cref="AgentFileEntry.Path"/> is its absolute path. Past <paramref name="limits"/>
    /// the listing is abandoned (the agent stops enumerating) and <see cref="AgentException.TooLarge"/>
    /// is thrown, so what the host holds is bounded whatever the guest sends.
    /// </summary>
    public async Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, int depth, ListLimits limits, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(depth, ProcessLimits.MaxListDepth);
        var s = await OpenAsync(new OpenRequest { Op = Ops.List, Path = path, Depth = depth == 1 ? null : depth }, ct).ConfigureAwait(false);
        var entries = new List<AgentFileEntry>();
        string prefix = path.EndsWith('/') ? path : path + "/";
        long bytes = 0;
        try
        {
            while (true)
            {
                var item = await s.NextAsync(ct).ConfigureAwait(false);
                if (item.Type == FrameType.End)
                {
                    ThrowIfError(item.End!);
                    return entries;
                }
                foreach (var dto in item.Reply!.Entries!)
                {
                    bytes += (dto.Name.Length + (dto.Path?.Length ?? 0) + (dto.Target?.Length ?? 0)) * sizeof(char) + ListLimits.EntryOverheadBytes;
                    if (entries.Count >= limits.MaxEntries || bytes > limits.MaxBytes)
                        throw new AgentException(AgentException.TooLarge,
                            $"{path} has more than {limits.MaxEntries} entries or {limits.MaxBytes / 1024} KiB of names; " +
                            "list a subdirectory, or run ls or find with exec");
                    entries.Add(Validation.ToEntry(dto, prefix + (dto.Path ?? dto.Name)));
                }
                Consumed(s, item.Data.Length);
            }
        }
        finally
        {
            Abandon(s);
        }
    }

    /// <summary>Metadata of a path (symlinks are not followed; <see cref="AgentFileEntry.SymlinkTarget"/> says where they point).</summary>
    public async Task<AgentFileEntry> StatAsync(string path, CancellationToken ct) =>
        Validation.ToEntry((await RunAsync(new OpenRequest { Op = Ops.Stat, Path = path }, ct).ConfigureAwait(false)).Entry!, path);

    /// <summary>Whether the path exists (a dangling symlink does: it is not followed).</summary>
    public async Task<bool> ExistsAsync(string path, CancellationToken ct)
    {
        try
        {
            await RunAsync(new OpenRequest { Op = Ops.Stat, Path = path }, ct).ConfigureAwait(false);
            return true;
        }
        catch (AgentException e) when (e.Code is ErrorCodes.FileNotFound or ErrorCodes.NotADirectory)
        {
            return false;
        }
    }

    /// <summary>Creates a directory and its parents (mkdir -p). True when it was created, false when it already existed.</summary>
    /// <remarks>An agent without the <c>files2</c> feature does not say; then the answer is true.</remarks>
    public async Task<bool> MkdirAsync(string path, CancellationToken ct) =>
        (await RunAsync(new OpenRequest { Op = Ops.Mkdir, Path = path }, ct).ConfigureAwait(false)).Created ?? true;

    /// <summary>
    /// Renames <paramref name="source"/> to <paramref name="destination"/> (rename(2): an existing file or
    /// empty directory there is replaced; parents are created; across file systems it fails with io_error).
    /// Returns the entry at its new place.
    /// </summary>
    public async Task<AgentFileEntry> MoveAsync(string source, string destination, CancellationToken ct) =>
        Validation.ToEntry((await RunAsync(new OpenRequest { Op = Ops.Move, Path = source, Destination = destination }, ct)
            .ConfigureAwait(false)).Entry!, destination);

    public Task RemoveAsync(string path, bool recursive, CancellationToken ct) =>
        RunAsync(new OpenRequest { Op = Ops.Remove, Path = path, Recursive = recursive }, ct);

    /// <summary>
    /// Watches a directory (inotify): <see cref="WatchEvent.Started"/> once the watches are in place
    /// (a missing path throws file_not_found before it), then changes as they happen. Ends when the
    /// caller stops enumerating or cancels, or when the watched directory itself is removed or moved.
    /// If the guest loses events (its inotify queue overflowed because nobody consumed), enumeration
    /// throws io_error: rescan and watch again.
    /// </summary>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string path, WatchOptions? options, [EnumeratorCancellation] CancellationToken ct)
    {
        var request = new WatchRequest
        {
            Recursive = options?.Recursive ?? false,
            KeepaliveMs = options?.KeepaliveInterval is { } k ? Milliseconds(k, ProcessLimits.MinKeepaliveMs, ProcessLimits.MaxKeepaliveMs) : null,
        };
        var s = await OpenAsync(new OpenRequest { Op = Ops.Watch, Path = path, Watch = request }, ct).ConfigureAwait(false);
        try
        {
            while (true)
            {
                var item = await s.NextAsync(ct).ConfigureAwait(false);
                if (item.Type == FrameType.End)
                {
                    ThrowIfError(item.End!);
                    yield break;
                }
                Consumed(s, item.Data.Length);
                var r = item.Reply!;
                if (r.Watching == true) yield return new WatchEvent.Started();
                else if (r.Keepalive == true) yield return new WatchEvent.Keepalive();
                else
                {
                    foreach (var e in r.Events!)
                        yield return new WatchEvent.Change(e.Type switch
                        {
                            WatchEventTypes.Create => WatchEventKind.Create,
                            WatchEventTypes.Write => WatchEventKind.Write,
                            WatchEventTypes.Remove => WatchEventKind.Remove,
                            WatchEventTypes.Rename => WatchEventKind.Rename,
                            _ => WatchEventKind.Chmod,
                        }, e.Name);
                }
            }
        }
        finally
        {
            Abandon(s);
        }
    }

    /// <summary>A positive duration in whole milliseconds, rounded up and checked against the protocol's bounds.</summary>
    private static long Milliseconds(TimeSpan value, long min, long max)
    {
        long ms = (long)Math.Ceiling(value.TotalMilliseconds);
        if (ms < min || ms > max) throw new ArgumentOutOfRangeException(nameof(value), value, $"must be {min} ms .. {max} ms");
        return ms;
    }
}
