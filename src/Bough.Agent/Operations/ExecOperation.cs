using System.Diagnostics;
using System.Text;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// exec: validates the request, resolves argv[0] against the command's own PATH, spawns it as the
/// leader of a new session and hands it to <see cref="ExecIoLoop"/>. A command that cannot be
/// found or executed reports exit code 127 / 126 with a message on stderr, like a shell would, so
/// callers handle it like any failing command. The process belongs to the stream: cancelling the
/// stream or dropping the session kills its group (the process table, proc.*, is the other model).
/// </summary>
internal static class ExecOperation
{
    public const long MaxTimeoutMs = ProcessLimits.MaxTimeoutMs;

    public static async Task<EndMessage> RunAsync(ExecRequest request, AgentStream stream, AgentState state)
    {
        if (request.TimeoutMs is { } t && (t <= 0 || t > MaxTimeoutMs))
            throw new AgentError(ErrorCodes.BadRequest, $"timeoutMs must be 1..{MaxTimeoutMs}");
        var command = CommandLine.Prepare(request.Argv, request.Env, request.Cwd, request.User, state);
        var argv = command.Argv;

        var watch = Stopwatch.StartNew();
        if (command.Executable == null)
            return await FailLikeShellAsync(stream, 127, $"{argv[0]}: command not found", watch).ConfigureAwait(false);

        var process = CommandLine.Spawn(command, state, request.Stdin, ttyPath: null, out int errno);
        if (process == null)
        {
            if (errno == Libc.ENOENT && !Directory.Exists(command.Cwd))
                throw new AgentError(ErrorCodes.FileNotFound, $"working directory does not exist: {command.Cwd}");
            int code = errno == Libc.ENOENT ? 127 : 126;
            return await FailLikeShellAsync(stream, code, $"{argv[0]}: {Libc.StrError(errno)}", watch).ConfigureAwait(false);
        }
        stream.Log.Debug($"stream {stream.Id}: spawned pid {process.Pid}: {string.Join(' ', argv)}");
        var loop = new ExecIoLoop(stream, process, request.TimeoutMs, watch);
        return new EndMessage { Exit = await loop.RunAsync().ConfigureAwait(false) };
    }

    private static async Task<EndMessage> FailLikeShellAsync(AgentStream stream, int code, string message, Stopwatch watch)
    {
        await stream.SendDataAsync(DataChannel.Stderr, Encoding.UTF8.GetBytes($"bough-agent: {message}\n")).ConfigureAwait(false);
        return new EndMessage { Exit = new ExitDto { ExitCode = code, DurationMs = watch.ElapsedMilliseconds } };
    }
}
