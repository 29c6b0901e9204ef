using System.Runtime.CompilerServices;
using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>
/// The agent's process table (docs/protocol.md, "Process table"): processes that outlive the call,
/// the stream and the connection that started them.
/// </summary>
public sealed partial class AgentConnection
{
    /// <summary>Starts a process in the background and returns its pid (= its process group id).</summary>
    public async Task<int> StartProcessAsync(ProcessSpec spec, CancellationToken ct)
    {
        var end = await RunAsync(new OpenRequest { Op = Ops.ProcStart, Process = ToRequest(spec, detach: true) }, ct).ConfigureAwait(false);
        return end.Pid!.Value;
    }

    /// <summary>
    /// Starts a process and streams its output from the first byte. Stopping the enumeration (or
    /// cancelling <paramref name="ct"/>) only detaches: the process keeps running and can be attached
    /// to again. <see cref="AttachOptions.Deadline"/> is what kills it when this stream outlasts it.
    /// Output is lossless while attached: a slow consumer holds the process back (its pipe fills).
    /// </summary>
    public IAsyncEnumerable<ProcessEvent> StartProcessAttachedAsync(ProcessSpec spec, AttachOptions? options, CancellationToken ct) =>
        ProcessEventsAsync(new OpenRequest { Op = Ops.ProcStart, Process = ToRequest(spec, detach: false), Attach = ToRequest(options, replay: null) }, ct);

    /// <summary>
    /// Attaches to a process of the table: the output the agent still buffers (unless
    /// <see cref="AttachOptions.Replay"/> is false), then live output, then its exit. For a process that
    /// has already exited (the agent remembers the last few), the buffered tail and the exit.
    /// Stopping the enumeration detaches. Unknown process: not_found.
    /// </summary>
    public IAsyncEnumerable<ProcessEvent> AttachProcessAsync(ProcessSelector process, AttachOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(process);
        return ProcessEventsAsync(new OpenRequest
        {
            Op = Ops.ProcAttach, Target = process.ToDto(), Attach = ToRequest(options, replay: options?.Replay ?? true),
        }, ct);
    }

    /// <summary>The running processes of the table (oldest first), and with <paramref name="includeExited"/> the few exited ones it remembers.</summary>
    public async Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(bool includeExited, CancellationToken ct)
    {
        var s = await OpenAsync(new OpenRequest { Op = Ops.ProcList, IncludeExited = includeExited ? true : null }, ct).ConfigureAwait(false);
        var list = new List<ProcessInfo>();
        try
        {
            while (true)
            {
                var item = await s.NextAsync(ct).ConfigureAwait(false);
                if (item.Type == FrameType.End)
                {
                    ThrowIfError(item.End!);
                    return list;
                }
                list.AddRange(item.Reply!.Processes!.Select(ToInfo));
                Consumed(s, item.Data.Length);
            }
        }
        finally
        {
            Abandon(s);
        }
    }

    /// <summary>
    /// Writes bytes to a process's stdin (or its terminal) and returns once the process's pipe took
    /// them all. bad_request when it was started without stdin or stdin was closed; not_found once it exited.
    /// </summary>
    public Task SendProcessInputAsync(ProcessSelector process, ReadOnlyMemory<byte> data, CancellationToken ct) =>
        SendProcessInputAsync(process, new ReadOnlyMemoryStream(data), ct);

    /// <summary>Streams <paramref name="input"/> to a process's stdin (or its terminal) until its end; the caller keeps ownership.</summary>
    public async Task SendProcessInputAsync(ProcessSelector process, Stream input, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(process);
        ArgumentNullException.ThrowIfNull(input);
        await RunWithUploadAsync(new OpenRequest { Op = Ops.ProcInput, Target = process.ToDto() }, input, ct).ConfigureAwait(false);
    }

    /// <summary>Closes a process's stdin after the input already sent; the process reads EOF. A terminal has none (bad_request): send 0x04.</summary>
    public Task CloseProcessStdinAsync(ProcessSelector process, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(process);
        return RunAsync(new OpenRequest { Op = Ops.ProcCloseStdin, Target = process.ToDto() }, ct);
    }

    /// <summary>
    /// Sends a signal (1..64) to the process's group, or with <paramref name="group"/> false to the process
    /// alone. False when there is no such process or it has already exited.
    /// </summary>
    public async Task<bool> SignalProcessAsync(ProcessSelector process, int signal, bool group, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfLessThan(signal, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(signal, 64);
        try
        {
            await RunAsync(new OpenRequest { Op = Ops.ProcSignal, Target = process.ToDto(), Signal = signal, Group = group ? null : false }, ct)
                .ConfigureAwait(false);
            return true;
        }
        catch (AgentException e) when (e.Code == ErrorCodes.NotFound)
        {
            return false;
        }
    }

    /// <summary>SIGKILL to the process group; false when there is no such process or it has already exited.</summary>
    public Task<bool> KillProcessAsync(ProcessSelector process, CancellationToken ct) => SignalProcessAsync(process, 9, group: true, ct);

    /// <summary>Resizes a terminal process's terminal (TIOCSWINSZ; the process gets SIGWINCH).</summary>
    public Task ResizeProcessAsync(ProcessSelector process, PtySize size, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(process);
        return RunAsync(new OpenRequest { Op = Ops.ProcResize, Target = process.ToDto(), Size = ToDto(size) }, ct);
    }

    private async IAsyncEnumerable<ProcessEvent> ProcessEventsAsync(OpenRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        var s = await OpenAsync(request, ct).ConfigureAwait(false);
        try
        {
            int pendingConsumed = 0;
            while (true)
            {
                if (pendingConsumed > 0) { Consumed(s, pendingConsumed); pendingConsumed = 0; }
                var item = await s.NextAsync(ct).ConfigureAwait(false);
                switch (item.Type)
                {
                    case FrameType.Reply:
                        Consumed(s, item.Data.Length);
                        var r = item.Reply!;
                        yield return r.Keepalive == true ? new ProcessEvent.Keepalive() : new ProcessEvent.Started(r.Pid!.Value, r.Pty == true, r.Skipped ?? 0);
                        break;
                    case FrameType.Data:
                        pendingConsumed = item.Data.Length;
                        var stream = s.Pty ? ProcessOutputKind.Pty : item.Channel == DataChannel.Stdout ? ProcessOutputKind.Stdout : ProcessOutputKind.Stderr;
                        yield return new ProcessEvent.Output(stream, item.Data);
                        break;
                    case FrameType.End:
                        var x = ThrowIfError(item.End!).Exit!;
                        yield return new ProcessEvent.Exited(x.ExitCode, x.Signal, x.TimedOut, x.DurationMs);
                        yield break;
                }
            }
        }
        finally
        {
            Abandon(s);
        }
    }

    private static ProcessStartRequest ToRequest(ProcessSpec spec, bool detach)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Argv is not { Count: > 0 }) throw new ArgumentException("argv must not be empty", nameof(spec));
        if (spec.Tag is { } tag && (tag.Length is 0 or > ProcessLimits.MaxTagLength))
            throw new ArgumentException($"tag must be 1..{ProcessLimits.MaxTagLength} characters", nameof(spec));
        return new ProcessStartRequest
        {
            Argv = [.. spec.Argv],
            Env = spec.Env == null ? null : new Dictionary<string, string>(spec.Env),
            Cwd = spec.Cwd,
            User = spec.User,
            Tag = spec.Tag,
            Stdin = spec.Stdin,
            Pty = spec.Pty is { } size ? ToDto(size) : null,
            TimeoutMs = spec.Timeout is { } t ? Milliseconds(t, 1, ProcessLimits.MaxTimeoutMs) : null,
            Detach = detach,
        };
    }

    private static AttachRequest? ToRequest(AttachOptions? options, bool? replay) =>
        options == null && replay is null or true ? null : new AttachRequest
        {
            Replay = replay == false ? false : null,
            DeadlineMs = options?.Deadline is { } d ? Milliseconds(d, 1, ProcessLimits.MaxTimeoutMs) : null,
            KeepaliveMs = options?.KeepaliveInterval is { } k ? Milliseconds(k, ProcessLimits.MinKeepaliveMs, ProcessLimits.MaxKeepaliveMs) : null,
        };

    private static PtySizeDto ToDto(PtySize size)
    {
        if (size.Cols is < 1 or > ProcessLimits.MaxPtyDimension || size.Rows is < 1 or > ProcessLimits.MaxPtyDimension)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"cols and rows must be 1..{ProcessLimits.MaxPtyDimension}");
        return new PtySizeDto { Cols = size.Cols, Rows = size.Rows };
    }

    private static ProcessInfo ToInfo(ProcessInfoDto p) => new(
        p.Pid, p.Tag, p.Argv, p.Env ?? new Dictionary<string, string>(), p.Cwd, p.User,
        p.Pty is { } size ? new PtySize(size.Cols, size.Rows) : null,
        p.StdinOpen,
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(p.StartedAtMs, 0, 253402300799999L)),
        p.Exit is { } x ? new ProcessEvent.Exited(x.ExitCode, x.Signal, x.TimedOut, x.DurationMs) : null,
        p.Truncated == true);
}
