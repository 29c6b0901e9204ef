using Bough.Agent.Native;
using Bough.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bough.Agent.Operations;

/// <summary>
/// File operations. Metadata comes from statx without following symlinks (a listing shows links as
/// links); errors come from errno so they map exactly onto the protocol's error codes.
/// Contents are streamed in chunks under flow control and never held whole in memory.
/// </summary>
internal static class FileOperations
{
    private const int ListBatchBytes = 32 * 1024;

    /// <summary>
    /// The agent's own cap on one listing (<c>--max-list-entries</c>; the host enforces its own, the
    /// same by default): enumerating a directory of millions of entries is guest work nobody will read.
    /// </summary>
    internal const int DefaultMaxListEntries = 100_000;

    /// <summary>Names (UTF-16 bytes) plus <see cref="ListEntryOverhead"/> per entry, as the host counts them.</summary>
    internal const long MaxListBytes = 16L * 1024 * 1024;
    private const int ListEntryOverhead = 64;

    /// <summary>The host's code for an answer over a cap (not in the protocol's list yet; the host maps it to 413).</summary>
    internal const string TooLarge = "too_large";

    public static async Task<EndMessage> WriteAsync(OpenRequest request, AgentStream stream)
    {
        string path = RequirePath(request);
        if (request.Mode is { } m && (m < 0 || m > 0xFFF)) throw new AgentError(ErrorCodes.BadRequest, $"mode {m} is not a permission mask (0..07777)");
        string name = Path.GetFileName(path);
        string dir = Path.GetDirectoryName(path) ?? "/";
        if (name.Length == 0) throw new AgentError(ErrorCodes.IsADirectory, $"cannot write to directory path {path}");

        uint mode = (uint)(request.Mode ?? 0x1A4); // 0644
        int err = FileStat.TryGet(path, true, out var existing);
        if (err == 0)
        {
            if (existing.IsDirectory) throw new AgentError(ErrorCodes.IsADirectory, $"{path} is a directory");
            if (request.Mode == null) mode = (uint)existing.Permissions;
        }
        MakeDirectories(dir);

        // Write next to the target and rename: readers never observe a half-written file.
        // Random.Shared, not RandomNumberGenerator: the guest has no libssl and the crypto API
        // aborts the process when it cannot load it. O_EXCL guarantees uniqueness anyway.
        string temp = Path.Combine(dir, $".{name}.bough-{Random.Shared.NextInt64():x16}.tmp");
        int fd = Libc.open(temp, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x180);
        if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "create", temp);
        bool renamed = false;
        try
        {
            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            long offset = 0;
            await foreach (var chunk in stream.Input.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                try { RandomAccess.Write(handle, chunk, offset); }
                catch (IOException e) { throw new AgentError(ErrorCodes.IoError, $"write {path}: {e.Message}"); }
                offset += chunk.Length;
                await stream.ConsumedAsync(chunk.Length, flush: stream.Input.Count == 0).ConfigureAwait(false);
            }
            stream.Token.ThrowIfCancellationRequested();
            if (Libc.fchmod(fd, mode) != 0) throw AgentError.FromErrno(Libc.Errno, "chmod", path);
            if (Libc.fsync(fd) != 0) throw AgentError.FromErrno(Libc.Errno, "fsync", path);
            if (Libc.rename(temp, path) != 0) throw AgentError.FromErrno(Libc.Errno, "rename to", path);
            renamed = true;
            return new EndMessage { Size = offset };
        }
        finally
        {
            if (!renamed) Libc.unlink(temp);
        }
    }

    public static async Task<EndMessage> ReadAsync(OpenRequest request, AgentStream stream)
    {
        string path = RequirePath(request);
        int err = FileStat.TryGet(path, true, out var st);
        if (err != 0) throw AgentError.FromErrno(err, "read", path);
        if (st.IsDirectory) throw new AgentError(ErrorCodes.IsADirectory, $"{path} is a directory");
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOCTTY, 0);
        if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "open", path);
        using var file = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, bufferSize: 0);
        await stream.SendReplyAsync(new ReplyMessage { Size = st.Size, Mode = st.Permissions, MtimeMs = st.MtimeMs }).ConfigureAwait(false);
        var buffer = new byte[ProtocolConstants.MaxDataChunk];
        long total = 0;
        while (true)
        {
            // Wait for credit before reading so that at most one chunk is ever read ahead.
            int credit = await stream.SendCredit.AcquireAsync(buffer.Length, stream.Token).ConfigureAwait(false);
            stream.SendCredit.Return(credit);
            int n;
            try { n = await file.ReadAsync(buffer.AsMemory(0, credit), stream.Token).ConfigureAwait(false); }
            catch (IOException e) { throw new AgentError(ErrorCodes.IoError, $"read {path}: {e.Message}"); }
            if (n == 0) break;
            total += n;
            await stream.SendDataAsync(DataChannel.Content, buffer.AsMemory(0, n)).ConfigureAwait(false);
        }
        return new EndMessage { Size = total };
    }

    public static async Task<EndMessage> ListAsync(OpenRequest request, AgentStream stream, int maxEntries)
    {
        string path = RequirePath(request);
        int err = FileStat.TryGet(path, true, out var st);
        if (err != 0) throw AgentError.FromErrno(err, "list", path);
        if (!st.IsDirectory) throw new AgentError(ErrorCodes.NotADirectory, $"{path} is not a directory");
        var options = new EnumerationOptions
        {
            AttributesToSkip = 0, IgnoreInaccessible = false, RecurseSubdirectories = false,
            ReturnSpecialDirectories = false, MatchType = MatchType.Simple,
        };
        var batch = new List<FileEntryDto>();
        int batchBytes = 0;
        int listed = 0;
        long listedBytes = 0;
        try
        {
            foreach (var child in Directory.EnumerateFileSystemEntries(path, "*", options))
            {
                stream.Token.ThrowIfCancellationRequested();
                if (FileStat.TryGet(child, false, out var cst) != 0) continue; // vanished meanwhile
                var entry = cst.ToEntry(Path.GetFileName(child));
                listedBytes += entry.Name.Length * sizeof(char) + ListEntryOverhead;
                if (++listed > maxEntries || listedBytes > MaxListBytes)
                    throw new AgentError(TooLarge, $"{path} has more than {maxEntries} entries or {MaxListBytes / 1024} KiB of names");
                batch.Add(entry);
                batchBytes += entry.Name.Length * 3 + 96;
                if (batchBytes >= ListBatchBytes)
                {
                    await stream.SendReplyAsync(new ReplyMessage { Entries = batch }).ConfigureAwait(false);
                    batch = [];
                    batchBytes = 0;
                }
            }
        }
        catch (UnauthorizedAccessException e) { throw new AgentError(ErrorCodes.PermissionDenied, e.Message); }
        catch (DirectoryNotFoundException e) { throw new AgentError(ErrorCodes.FileNotFound, e.Message); }
        catch (IOException e) { throw new AgentError(ErrorCodes.IoError, e.Message); }
        if (batch.Count > 0) await stream.SendReplyAsync(new ReplyMessage { Entries = batch }).ConfigureAwait(false);
        return new EndMessage();
    }

    public static EndMessage Stat(OpenRequest request)
    {
        string path = RequirePath(request);
        int err = FileStat.TryGet(path, false, out var st);
        if (err != 0) throw AgentError.FromErrno(err, "stat", path);
        string name = path == "/" ? "/" : Path.GetFileName(path.TrimEnd('/'));
        return new EndMessage { Entry = st.ToEntry(name) };
    }

    public static EndMessage Mkdir(OpenRequest request)
    {
        string path = RequirePath(request);
        MakeDirectories(path);
        return new EndMessage();
    }

    public static EndMessage Remove(OpenRequest request)
    {
        string path = RequirePath(request);
        if (GuestPath.IsRoot(path)) throw new AgentError(ErrorCodes.BadRequest, $"refusing to remove / ('{request.Path}')");
        int err = FileStat.TryGet(path, false, out var st);
        if (err != 0) throw AgentError.FromErrno(err, "remove", path);
        if (st.IsDirectory)
        {
            if (request.Recursive == true)
            {
                try { Directory.Delete(path, recursive: true); }
                catch (UnauthorizedAccessException e) { throw new AgentError(ErrorCodes.PermissionDenied, e.Message); }
                catch (IOException e) { throw new AgentError(ErrorCodes.IoError, e.Message); }
            }
            else if (Libc.rmdir(path) != 0) throw AgentError.FromErrno(Libc.Errno, "rmdir", path);
        }
        else if (Libc.unlink(path) != 0) throw AgentError.FromErrno(Libc.Errno, "unlink", path);
        return new EndMessage();
    }

    /// <summary>mkdir -p: existing directories are fine, an existing non-directory is an error.</summary>
    private static void MakeDirectories(string path)
    {
        string current = "";
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            current += "/" + parts[i];
            if (Libc.mkdir(current, 0x1ED /* 0755 */) == 0) continue;
            int errno = Libc.Errno;
            if (errno != Libc.EEXIST) throw AgentError.FromErrno(errno, "mkdir", current);
            int err = FileStat.TryGet(current, true, out var st);
            if (err != 0) throw AgentError.FromErrno(err, "mkdir", current);
            if (!st.IsDirectory)
            {
                throw i == parts.Length - 1
                    ? new AgentError(ErrorCodes.AlreadyExists, $"{current} exists and is not a directory")
                    : new AgentError(ErrorCodes.NotADirectory, $"{current} is not a directory");
            }
        }
    }

    /// <summary>The request's path, checked absolute and then normalised (<see cref="GuestPath"/>) before any other check.</summary>
    private static string RequirePath(OpenRequest request)
    {
        AgentError.RequireAbsolute(request.Path);
        return GuestPath.Normalize(request.Path!);
    }
}
