using System.Globalization;
using Bough.Contracts;
using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// What Start and Connect share: the selector as the engine's <see cref="ProcessRef"/>, the
/// client's keepalive interval, and the pump that turns the engine's process stream into
/// <c>ProcessEvent</c> messages (<c>start</c> first, as the SDK insists, then <c>data</c> and
/// <c>keepalive</c>, then <c>end</c>).
/// </summary>
internal static class ProcessStreaming
{
    /// <summary>envd's keepalive when the client names none (the SDK asks for 50 s).</summary>
    private static readonly TimeSpan DefaultKeepalive = TimeSpan.FromSeconds(50);

    /// <summary>The <c>selector</c> oneof as a reference; neither member set is the client's mistake.</summary>
    public static ProcessRef ToRef(ProcessSelector? selector) => selector switch
    {
        { Pid: { } pid } when pid is > 0 and <= int.MaxValue => ProcessRef.ByPid((int)pid),
        { Pid: { } pid } => throw new ConnectException(ConnectError.NotFound, $"process with pid {pid} not found"),
        { Tag: { Length: > 0 } tag } => ProcessRef.ByTag(tag),
        _ => throw new ConnectException(ConnectError.InvalidArgument, "field 'process' must name a pid or a tag"),
    };

    /// <summary>The client's <c>Keepalive-Ping-Interval</c> (seconds), else envd-like 50 s.</summary>
    public static TimeSpan KeepaliveInterval(EnvdRequest request)
    {
        var value = request.Http.Request.Headers["Keepalive-Ping-Interval"].ToString();
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s is >= 1 and <= 3600
            ? TimeSpan.FromSeconds(s) : DefaultKeepalive;
    }

    /// <summary>
    /// Sends every item of <paramref name="items"/> until the process's exit. Failures before the
    /// first item propagate with nothing sent, so the end message carries them without a
    /// <c>start</c> (what envd does for a command that cannot start).
    /// </summary>
    public static async Task PumpAsync(IAsyncEnumerable<ProcessStreamItem> items, ConnectStream stream, CancellationToken ct)
    {
        var started = false;
        await foreach (var item in items.WithCancellation(ct))
        {
            var e = ToEvent(item);
            if (e is null)
                continue;
            if (!started && e.Start is null)
                throw new ConnectException(ConnectError.Internal, "the process stream did not begin with its start");
            started = true;
            await stream.SendAsync(new ProcessEventMessage(e), ct);
            if (item.Kind == ProcessStreamKind.Exit)
                return;
        }
        throw new ConnectException(ConnectError.Unavailable, "the process stream ended without an exit status (the sandbox's agent went away)");
    }

    private static ProcessEvent? ToEvent(ProcessStreamItem item) => item.Kind switch
    {
        ProcessStreamKind.Started => new ProcessEvent { Start = new StartEvent((uint)item.Pid) },
        ProcessStreamKind.Stdout => new ProcessEvent { Data = new DataEvent { Stdout = Convert.ToBase64String(item.Data.Span) } },
        ProcessStreamKind.Stderr => new ProcessEvent { Data = new DataEvent { Stderr = Convert.ToBase64String(item.Data.Span) } },
        ProcessStreamKind.Pty => new ProcessEvent { Data = new DataEvent { Pty = Convert.ToBase64String(item.Data.Span) } },
        ProcessStreamKind.Keepalive => new ProcessEvent { Keepalive = new KeepAlive() },
        ProcessStreamKind.Exit when item.Exit is { } exit => new ProcessEvent { End = ToEnd(exit) },
        _ => null,
    };

    /// <summary>envd's end event: Go's <c>ProcessState.String()</c> as status (and as error unless the exit was clean).</summary>
    public static EndEvent ToEnd(ProcessExitStatus exit)
    {
        if (exit.Signal is { } signal || exit.TimedOut)
        {
            var status = "signal: " + SignalName(exit.Signal ?? 9);
            return new EndEvent { ExitCode = -1, Exited = false, Status = status, Error = status };
        }
        var text = "exit status " + exit.ExitCode.ToString(CultureInfo.InvariantCulture);
        return new EndEvent { ExitCode = exit.ExitCode, Exited = true, Status = text, Error = exit.ExitCode == 0 ? null : text };
    }

    private static string SignalName(int signal) => signal switch
    {
        1 => "hangup",
        2 => "interrupt",
        9 => "killed",
        13 => "broken pipe",
        15 => "terminated",
        _ => signal.ToString(CultureInfo.InvariantCulture),
    };
}
