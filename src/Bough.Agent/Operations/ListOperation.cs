using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// list: a directory's entries in REPLY batches, down to <see cref="OpenRequest.Depth"/> levels
/// (breadth first; symlinked directories are listed as links, never entered). With a depth above
/// 1 every entry carries its path relative to the listed directory. A subdirectory that cannot be
/// read (or vanished) is skipped; only the listed directory itself must be readable.
/// </summary>
internal static class ListOperation
{
    /// <summary>
    /// The agent's own cap on one listing (<c>--max-list-entries</c>; the host enforces its own, the
    /// same by default): enumerating a directory of millions of entries is guest work nobody will read.
    /// </summary>
    internal const int DefaultMaxListEntries = 100_000;

    /// <summary>Names, relative paths and link targets (UTF-16 bytes) plus <see cref="EntryOverhead"/> per entry, as the host counts them.</summary>
    internal const long MaxListBytes = 16L * 1024 * 1024;
    private const int EntryOverhead = 64;

    /// <summary>A REPLY is sent before its JSON could pass this (REPLY payloads are capped at 64 KiB).</summary>
    private const int BatchBytes = 56 * 1024;

    public static async Task<EndMessage> RunAsync(OpenRequest request, AgentStream stream, AgentState state)
    {
        string path = FileOperations.RequirePath(request);
        int depth = request.Depth ?? 1;
        if (depth is < 1 or > ProcessLimits.MaxListDepth)
            throw new AgentError(ErrorCodes.BadRequest, $"depth must be 1..{ProcessLimits.MaxListDepth}");
        int err = FileStat.TryGet(path, true, out var st);
        if (err != 0) throw AgentError.FromErrno(err, "list", path);
        if (!st.IsDirectory) throw new AgentError(ErrorCodes.NotADirectory, $"{path} is not a directory");

        var details = new EntryDetails(state.Users);
        var batch = new List<FileEntryDto>();
        int batchBytes = 0;
        int listed = 0;
        long listedBytes = 0;
        var pending = new Queue<(string Dir, string? Relative, int Level)>();
        pending.Enqueue((path, null, 1));
        while (pending.TryDequeue(out var dir))
        {
            foreach (var child in Enumerate(dir.Dir, mustSucceed: dir.Level == 1))
            {
                stream.Token.ThrowIfCancellationRequested();
                if (FileStat.TryGet(child, false, out var cst) != 0) continue; // vanished meanwhile
                string name = Path.GetFileName(child);
                string? relative = depth == 1 ? null : dir.Relative == null ? name : $"{dir.Relative}/{name}";
                var entry = details.Describe(child, name, cst);
                entry.Path = relative;
                listedBytes += (entry.Name.Length + (relative?.Length ?? 0) + (entry.Target?.Length ?? 0)) * sizeof(char) + EntryOverhead;
                if (++listed > state.MaxListEntries || listedBytes > MaxListBytes)
                    throw new AgentError(ErrorCodes.TooLarge, $"{path} has more than {state.MaxListEntries} entries or {MaxListBytes / 1024} KiB of names");
                int size = JsonSize(entry);
                if (batchBytes + size > BatchBytes && batch.Count > 0)
                {
                    await stream.SendReplyAsync(new ReplyMessage { Entries = batch }).ConfigureAwait(false);
                    batch = [];
                    batchBytes = 0;
                }
                batch.Add(entry);
                batchBytes += size;
                if (cst.IsDirectory && dir.Level < depth) pending.Enqueue((child, relative, dir.Level + 1));
            }
        }
        if (batch.Count > 0) await stream.SendReplyAsync(new ReplyMessage { Entries = batch }).ConfigureAwait(false);
        return new EndMessage();
    }

    /// <summary>The children of a directory; errors fail the listing only for the listed directory itself.</summary>
    private static IEnumerable<string> Enumerate(string dir, bool mustSucceed)
    {
        var options = new EnumerationOptions
        {
            AttributesToSkip = 0, IgnoreInaccessible = false, RecurseSubdirectories = false,
            ReturnSpecialDirectories = false, MatchType = MatchType.Simple,
        };
        IEnumerator<string> e;
        try { e = Directory.EnumerateFileSystemEntries(dir, "*", options).GetEnumerator(); }
        catch (Exception ex) when (!mustSucceed && ex is IOException or UnauthorizedAccessException) { yield break; }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { throw Map(ex); }
        using (e)
        {
            while (true)
            {
                try
                {
                    if (!e.MoveNext()) yield break;
                }
                catch (Exception ex) when (!mustSucceed && ex is IOException or UnauthorizedAccessException) { yield break; }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { throw Map(ex); }
                yield return e.Current;
            }
        }
    }

    private static AgentError Map(Exception e) => e switch
    {
        UnauthorizedAccessException => new AgentError(ErrorCodes.PermissionDenied, e.Message),
        DirectoryNotFoundException => new AgentError(ErrorCodes.FileNotFound, e.Message),
        _ => new AgentError(ErrorCodes.IoError, e.Message),
    };

    /// <summary>Upper bound of the entry's JSON: 6 bytes per character covers \u escapes of control characters.</summary>
    private static int JsonSize(FileEntryDto e) =>
        200 + 6 * (e.Name.Length + (e.Path?.Length ?? 0) + (e.Target?.Length ?? 0) + (e.Owner?.Length ?? 0) + (e.Group?.Length ?? 0));
}
