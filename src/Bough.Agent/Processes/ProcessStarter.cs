using Bough.Agent.Native;
using Bough.Agent.Operations;
using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>
/// proc.start's spawn: validates, prepares the command like exec (env, user, cwd, PATH), reserves
/// a place in the table, opens the pty if asked, spawns, and registers the process with its I/O
/// thread not yet running, so the caller can attach before the first byte is read. Unlike exec, a
/// command that is not found is an error of the start (file_not_found), not a process exiting 127:
/// there is no process to list or attach to.
/// </summary>
internal static class ProcessStarter
{
    /// <summary>A registered process and its I/O thread, to be started with <see cref="ProcessIo.Start"/>.</summary>
    public sealed record Started(ManagedProcess Process, ProcessIo Io);

    public static Started Start(ProcessStartRequest request, AgentState state)
    {
        Validate(request);
        var command = CommandLine.Prepare(request.Argv, request.Env, request.Cwd, request.User, state);
        if (command.Executable == null)
            throw new AgentError(ErrorCodes.FileNotFound, $"{request.Argv[0]}: command not found");

        var table = state.Processes;
        var reservation = table.Reserve(request.Tag);
        int master = -1;
        SpawnedProcess? spawned = null;
        try
        {
            string? slave = null;
            if (request.Pty is { } size)
            {
                (master, slave) = Pty.Open(size.Cols, size.Rows);
                // As login does: the user owns their terminal (group and mode stay tty, 0620).
                if (command.User is { IsRoot: false } user && Libc.chown(slave, user.Uid, uint.MaxValue) != 0)
                    throw AgentError.FromErrno(Libc.Errno, "chown", slave);
            }
            spawned = CommandLine.Spawn(command, state, request.Stdin, slave, out int errno)
                ?? throw SpawnError(errno, command);
            var process = new ManagedProcess(table, spawned.Pid, request, command, master);
            var io = new ProcessIo(process, spawned, master, state.Log);
            table.Commit(reservation, process);
            state.Log.Debug($"process {spawned.Pid} started{(master >= 0 ? " on a pty" : "")}: {string.Join(' ', command.Argv)}");
            return new Started(process, io);
        }
        catch
        {
            table.Release(reservation);
            if (spawned != null) Abort(spawned);
            if (master >= 0) Libc.close(master);
            throw;
        }
    }

    /// <summary>Validates everything proc.start takes (argv, env, user and cwd are checked by <see cref="CommandLine"/>).</summary>
    public static void Validate(ProcessStartRequest request)
    {
        if (request.Tag is { } tag && (tag.Length is 0 or > ProcessLimits.MaxTagLength || tag.Any(char.IsControl)))
            throw new AgentError(ErrorCodes.BadRequest, $"tag must be 1..{ProcessLimits.MaxTagLength} characters without control characters");
        if (request.Pty is { } size) ValidateSize(size);
        if (request.TimeoutMs is { } t && (t <= 0 || t > ProcessLimits.MaxTimeoutMs))
            throw new AgentError(ErrorCodes.BadRequest, $"timeoutMs must be 1..{ProcessLimits.MaxTimeoutMs}");
    }

    public static void ValidateSize(PtySizeDto? size)
    {
        if (size == null || size.Cols is < 1 or > ProcessLimits.MaxPtyDimension || size.Rows is < 1 or > ProcessLimits.MaxPtyDimension)
            throw new AgentError(ErrorCodes.BadRequest, $"terminal cols and rows must be 1..{ProcessLimits.MaxPtyDimension}");
    }

    public static void ValidateAttach(AttachRequest? attach)
    {
        if (attach?.DeadlineMs is { } d && (d <= 0 || d > ProcessLimits.MaxTimeoutMs))
            throw new AgentError(ErrorCodes.BadRequest, $"deadlineMs must be 1..{ProcessLimits.MaxTimeoutMs}");
        if (attach?.KeepaliveMs is { } k && (k < ProcessLimits.MinKeepaliveMs || k > ProcessLimits.MaxKeepaliveMs))
            throw new AgentError(ErrorCodes.BadRequest, $"keepaliveMs must be {ProcessLimits.MinKeepaliveMs}..{ProcessLimits.MaxKeepaliveMs}");
    }

    private static AgentError SpawnError(int errno, PreparedCommand command)
    {
        if (errno == Libc.ENOENT && !Directory.Exists(command.Cwd))
            return new AgentError(ErrorCodes.FileNotFound, $"working directory does not exist: {command.Cwd}");
        return AgentError.FromErrno(errno, "spawn", command.Argv[0]);
    }

    /// <summary>Something failed after the spawn: the process must not run untracked.</summary>
    private static unsafe void Abort(SpawnedProcess spawned)
    {
        Libc.kill(-spawned.Pid, Libc.SIGKILL);
        int status;
        while (Libc.waitpid(spawned.Pid, &status, 0) < 0 && Libc.Errno == Libc.EINTR) { }
        foreach (int fd in new[] { spawned.StdinWrite, spawned.StdoutRead, spawned.StderrRead })
            if (fd >= 0) Libc.close(fd);
    }
}
