using System.Buffers;
using System.Text.Json;
using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Endpoints;

/// <summary>
/// Writes an engine stream as NDJSON, one line per item, flushed at once so a client sees output live
/// (exec and process output, watch events). The source ending without its last item gives <c>endLine</c>.
/// The headers wait up to <see cref="HeadStart"/> for the first item: most request errors (unknown
/// sandbox, not running, bad cwd) surface by then and still get a problem status instead of a 200; a
/// failure after that becomes a last <c>error</c> line.
/// </summary>
internal sealed class NdjsonStream<TItem, TLine>(
    IAsyncEnumerable<TItem> items, Func<TItem, TLine> toLine, Func<TItem, bool> isLast, Func<string, string, TLine> errorLine, TLine endLine, ILogger log)
    : IResult
{
    private static readonly TimeSpan HeadStart = TimeSpan.FromMilliseconds(250);

    public async Task ExecuteAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        await using var events = items.GetAsyncEnumerator(ct);
        var next = events.MoveNextAsync().AsTask();
        await Task.WhenAny(next, Task.Delay(HeadStart, CancellationToken.None));
        if (next.IsFaulted || next.IsCanceled)
            await next; // nothing sent yet: the error middleware answers with a problem

        var response = ctx.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ExecEndpoints.NdjsonMediaType;
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await response.StartAsync(ct);
            var sawLast = false;
            while (await next)
            {
                await WriteLineAsync(response, toLine(events.Current), ct);
                if (sawLast = isLast(events.Current))
                    break;
                next = events.MoveNextAsync().AsTask();
            }
            if (!sawLast)
                await WriteLineAsync(response, endLine, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away: that only detaches (a process runs on; a watch ends).
        }
        catch (BoughException ex)
        {
            log.LogInformation("Stream failed after start: {Code}: {Message}", ex.Code, ex.Message);
            await TryWriteAsync(response, errorLine(ex.Code, ex.Message), ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            log.LogError(ex, "Stream failed after start");
            await TryWriteAsync(response, errorLine(ErrorCodes.Internal, "an unexpected error occurred; the daemon log has the details"), ct);
        }
        finally
        {
            if (!next.IsCompleted)
                await next.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private async Task TryWriteAsync(HttpResponse response, TLine line, CancellationToken ct)
    {
        try { await WriteLineAsync(response, line, ct); }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            log.LogDebug("Could not deliver the error line: the client is gone");
        }
    }

    private static async Task WriteLineAsync(HttpResponse response, TLine line, CancellationToken ct)
    {
        var writer = response.BodyWriter;
        using (var json = new Utf8JsonWriter(writer))
            JsonSerializer.Serialize(json, line, BoughJson.Options);
        writer.Write("\n"u8);
        await writer.FlushAsync(ct);
    }
}

/// <summary>Engine stream items as wire lines.</summary>
internal static class StreamLines
{
    public static ProcessStreamEvent ToLine(ProcessStreamItem i) => i.Kind switch
    {
        ProcessStreamKind.Started => new ProcessStreamEvent { Type = "start", Pid = i.Pid, Pty = i.Pty, Skipped = i.Skipped },
        ProcessStreamKind.Stdout => new ProcessStreamEvent { Type = "stdout", Data = Convert.ToBase64String(i.Data.Span) },
        ProcessStreamKind.Stderr => new ProcessStreamEvent { Type = "stderr", Data = Convert.ToBase64String(i.Data.Span) },
        ProcessStreamKind.Pty => new ProcessStreamEvent { Type = "pty", Data = Convert.ToBase64String(i.Data.Span) },
        ProcessStreamKind.Keepalive => new ProcessStreamEvent { Type = "keepalive" },
        _ => new ProcessStreamEvent
        {
            Type = "exit", ExitCode = i.Exit?.ExitCode, Signal = i.Exit?.Signal, TimedOut = i.Exit?.TimedOut, DurationMs = i.Exit?.DurationMs,
        },
    };

    public static ExecEvent ToLine(ExecOutput o) => o.Kind switch
    {
        ExecOutputKind.Stdout => new ExecEvent { Type = "stdout", Data = Convert.ToBase64String(o.Data.Span) },
        ExecOutputKind.Stderr => new ExecEvent { Type = "stderr", Data = Convert.ToBase64String(o.Data.Span) },
        _ => new ExecEvent { Type = "exit", ExitCode = o.ExitCode, Signal = o.Signal, TimedOut = o.TimedOut, DurationMs = o.DurationMs },
    };

    public static ExecEvent ExecError(string code, string message) => new() { Type = "error", Code = code, Message = message };

    /// <summary>What an exec stream says when the engine's output ended without the exit status.</summary>
    public static readonly ExecEvent ExecEndedWithoutExit = ExecError(ErrorCodes.Internal, "the command's output ended without an exit status");

    public static ProcessStreamEvent ProcessError(string code, string message) => new() { Type = "error", Code = code, Message = message };

    public static FileWatchEvent ToLine(FileChange c) => new()
    {
        Type = c.Kind switch
        {
            FileChangeKind.Started => "start",
            FileChangeKind.Create => "create",
            FileChangeKind.Write => "write",
            FileChangeKind.Remove => "remove",
            FileChangeKind.Rename => "rename",
            FileChangeKind.Chmod => "chmod",
            _ => "keepalive",
        },
        Name = c.Name,
    };

    public static FileWatchEvent WatchError(string code, string message) => new() { Type = "error", Code = code, Message = message };
}
