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

    public static EndMessage Stat(OpenRequest request, AgentState state)
    {
        string path = RequirePath(request);
        return new EndMessage { Entry = Describe(path, new EntryDetails(state.Users), "stat") };
    }

    /// <summary>mkdir -p; END {created} tells whether the directory itself was made now.</summary>
    public static EndMessage Mkdir(OpenRequest request)
    {
        string path = RequirePath(request);
        return new EndMessage { Created = MakeDirectories(path) };
    }

    /// <summary>
    /// rename(2): replaces a file or an empty directory at the destination, as mv does within one
    /// file system (across file systems: io_error, EXDEV). Parents of the destination are created.
    /// END {entry} describes the moved path at its new place.
    /// </summary>
    public static EndMessage Move(OpenRequest request, AgentState state)
    {
        string from = RequirePath(request);
        AgentError.RequireAbsolute(request.Destination, "destination");
        string to = GuestPath.Normalize(request.Destination!);
        if (GuestPath.IsRoot(from) || GuestPath.IsRoot(to)) throw new AgentError(ErrorCodes.BadRequest, "cannot move / or onto /");
        int err = FileStat.TryGet(from, false, out _);
        if (err != 0) throw AgentError.FromErrno(err, "move", from);
        MakeDirectories(Path.GetDirectoryName(to.TrimEnd('/')) ?? "/");
        if (Libc.rename(from, to) != 0) throw AgentError.FromErrno(Libc.Errno, $"move {from} to", to);
        return new EndMessage { Entry = Describe(to, new EntryDetails(state.Users), "stat") };
    }

    /// <summary>The full entry of a path (symlinks not followed); the root is named "/".</summary>
    private static FileEntryDto Describe(string path, EntryDetails details, string what)
    {
        int err = FileStat.TryGet(path, false, out var st);
        if (err != 0) throw AgentError.FromErrno(err, what, path);
        string name = GuestPath.IsRoot(path) ? "/" : Path.GetFileName(path.TrimEnd('/'));
        return details.Describe(path, name, st);
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

    /// <summary>mkdir -p: existing directories are fine, an existing non-directory is an error. True when the last one was created.</summary>
    private static bool MakeDirectories(string path)
    {
        bool created = false;
        string current = "";
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            current += "/" + parts[i];
            created = false;
            if (Libc.mkdir(current, 0x1ED /* 0755 */) == 0)
            {
                created = true;
                continue;
            }
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
        return created;
    }

    /// <summary>The request's path, checked absolute and then normalised (<see cref="GuestPath"/>) before any other check.</summary>
    internal static string RequirePath(OpenRequest request)
    {
        AgentError.RequireAbsolute(request.Path);
        return GuestPath.Normalize(request.Path!);
    }
}
