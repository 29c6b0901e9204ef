using System.Globalization;
using Bough.E2b.Envd.Connect;
using Bough.Engine;
using Microsoft.Extensions.Logging;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/Start</c> for a foreground command, over the engine's streamed exec: the
/// <c>start</c> event first (with a pid the adapter numbers, as Bough has no guest process table
/// yet), then output as <c>data</c> events, <c>keepalive</c> events while the command is quiet, and
/// <c>end</c>. The call's deadline (<c>Connect-Timeout-Ms</c>) is the exec's timeout, so the engine
/// kills the command when it passes. Unlike envd, a client that disconnects also ends the command
/// (the engine tears a streamed exec down with its stream); background processes, stdin and PTYs
/// need the guest process table and answer <c>unimplemented</c> until it lands.
/// </summary>
internal sealed class StartMethod(ISandboxService sandboxes, ILogger<StartMethod> log) : IConnectStreamMethod
{
    /// <summary>How long to wait for the engine's first event before sending <c>start</c>: most request errors surface within it.</summary>
    private static readonly TimeSpan HeadStart = TimeSpan.FromMilliseconds(250);

    private static readonly TimeSpan DefaultKeepalive = TimeSpan.FromSeconds(50);

    private int _lastPid = 1000;

    public string Name => "process.Process/Start";

    public async Task StreamAsync(ConnectCall call, ConnectStream stream)
    {
        var request = call.Read<StartRequest>();
        if (request.Pty is not null)
            throw new ConnectException(ConnectError.Unimplemented, "pseudo-terminals are not supported yet");
        if (request.Stdin == true)
            throw new ConnectException(ConnectError.Unimplemented, "stdin for a started process is not supported yet");
        var config = request.Process ?? throw new ConnectException(ConnectError.InvalidArgument, "field 'process' is required");
        if (string.IsNullOrEmpty(config.Cmd))
            throw new ConnectException(ConnectError.InvalidArgument, "field 'process.cmd' is required");

        var env = call.Request;
        var command = new ExecCommand(
            [config.Cmd, .. config.Args ?? []],
            config.Envs,
            // No cwd: the user's home when the call (or the E2B base image) names a user, else the image's own.
            string.IsNullOrEmpty(config.Cwd) ? (env.User is null ? null : env.Home) : env.Resolve(config.Cwd),
            default,
            call.Deadline,
            env.User);
        var ct = call.Aborted;
        await using var events = sandboxes.ExecStreamAsync(env.Id, command, ct).GetAsyncEnumerator(ct);
        var next = events.MoveNextAsync().AsTask();
        try
        {
            await Task.WhenAny(next, Task.Delay(HeadStart, CancellationToken.None));
            if (next.IsFaulted || next.IsCanceled)
                await next; // not started: the end message carries the error, with no start event
            var pid = (uint)Interlocked.Increment(ref _lastPid);
            await stream.SendAsync(new ProcessEventMessage(new ProcessEvent { Start = new StartEvent(pid) }), ct);
            log.LogDebug("sandbox {Id}: started {Cmd} as pid {Pid}", env.Id, config.Cmd, pid);

            var keepalive = KeepaliveInterval(env);
            while (true)
            {
                using (var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    var idle = Task.Delay(keepalive, quiet.Token);
                    var first = await Task.WhenAny(next, idle);
                    await quiet.CancelAsync(); // no timer left behind per event
                    if (first != next)
                    {
                        ct.ThrowIfCancellationRequested();
                        await stream.SendAsync(new ProcessEventMessage(new ProcessEvent { Keepalive = new KeepAlive() }), ct);
                        continue;
                    }
                }
                if (!await next)
                    throw new ConnectException(ConnectError.Internal, "the command's output ended without an exit status");
                var output = events.Current;
                await stream.SendAsync(new ProcessEventMessage(ToEvent(output)), ct);
                if (output.Kind == ExecOutputKind.Exit)
                    return;
                next = events.MoveNextAsync().AsTask();
            }
        }
        finally
        {
            // An async iterator must not be disposed while a MoveNextAsync is in flight.
            if (!next.IsCompleted)
                await next.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private static ProcessEvent ToEvent(ExecOutput o) => o.Kind switch
    {
        ExecOutputKind.Stdout => new ProcessEvent { Data = new DataEvent { Stdout = Convert.ToBase64String(o.Data.Span) } },
        ExecOutputKind.Stderr => new ProcessEvent { Data = new DataEvent { Stderr = Convert.ToBase64String(o.Data.Span) } },
        _ when o.Signal is not null || o.TimedOut => new ProcessEvent
        {
            // What envd reports for a killed process.
            End = new EndEvent { ExitCode = -1, Exited = false, Status = "signal: killed", Error = "signal: killed" },
        },
        _ => new ProcessEvent
        {
            End = new EndEvent
            {
                ExitCode = o.ExitCode,
                Exited = true,
                Status = $"exit status {o.ExitCode.ToString(CultureInfo.InvariantCulture)}",
                Error = o.ExitCode == 0 ? null : $"exit status {o.ExitCode.ToString(CultureInfo.InvariantCulture)}",
            },
        },
    };

    /// <summary>The client's <c>Keepalive-Ping-Interval</c> (seconds), else envd-like 50 s.</summary>
    private static TimeSpan KeepaliveInterval(EnvdRequest request)
    {
        var value = request.Http.Request.Headers["Keepalive-Ping-Interval"].ToString();
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s is >= 1 and <= 3600
            ? TimeSpan.FromSeconds(s) : DefaultKeepalive;
    }
}
