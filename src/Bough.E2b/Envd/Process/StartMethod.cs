using Bough.Contracts;
using Bough.E2b.Envd.Connect;
using Bough.Engine;
using Microsoft.Extensions.Logging;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/Start</c> over the guest's process table: the process gets a real pid (the
/// one List, Connect, SendInput and SendSignal name), an optional tag, a stdin pipe when asked and
/// a pseudo-terminal when <c>pty</c> is set. Its output streams from the first byte. As in envd, a
/// client that disconnects only detaches (a background command runs on); the call's deadline
/// (<c>Connect-Timeout-Ms</c>) kills the process if the stream is still attached then.
/// </summary>
internal sealed class StartMethod(IGuestProcesses processes, ILogger<StartMethod> log) : IConnectStreamMethod
{
    public string Name => "process.Process/Start";

    public async Task StreamAsync(ConnectCall call, ConnectStream stream)
    {
        var request = call.Read<StartRequest>();
        var config = request.Process ?? throw new ConnectException(ConnectError.InvalidArgument, "field 'process' is required");
        if (string.IsNullOrEmpty(config.Cmd))
            throw new ConnectException(ConnectError.InvalidArgument, "field 'process.cmd' is required");
        TerminalSize? pty = null;
        if (request.Pty is { } p)
        {
            var size = p.Size ?? throw new ConnectException(ConnectError.InvalidArgument, "field 'pty.size' is required");
            pty = new TerminalSize((int)Math.Min(size.Cols, int.MaxValue), (int)Math.Min(size.Rows, int.MaxValue));
        }

        var env = call.Request;
        var start = new ProcessStart(
            [config.Cmd, .. config.Args ?? []],
            config.Envs,
            // No cwd: the user's home when the call (or the E2B base image) names a user, else the image's own.
            string.IsNullOrEmpty(config.Cwd) ? (env.User is null ? null : env.Home) : env.Resolve(config.Cwd),
            env.User,
            string.IsNullOrEmpty(request.Tag) ? null : request.Tag,
            request.Stdin == true,
            pty);
        var attach = new ProcessAttach(Replay: true, Deadline: call.Deadline, Keepalive: ProcessStreaming.KeepaliveInterval(env));
        log.LogDebug("sandbox {Id}: starting {Cmd} (pty {Pty}, stdin {Stdin})", env.Id, config.Cmd, pty is not null, start.Stdin);
        await ProcessStreaming.PumpAsync(processes.StartAttachedAsync(env.Id, start, attach, call.Aborted), stream, call.Aborted);
    }
}
