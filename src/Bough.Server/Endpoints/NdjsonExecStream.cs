using System.Buffers;
using System.Text.Json;
using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Endpoints;

/// <summary>
/// Writes an exec's output as NDJSON, one <see cref="ExecEvent"/> per line, flushed as soon as
/// it is produced so that a client sees output live.
/// </summary>
internal sealed class NdjsonExecStream(IAsyncEnumerable<ExecOutput> output, ILogger<NdjsonExecStream> log)
    : IResult
{
    /// <summary>
    /// How long to hold the response headers back waiting for the engine's first event. Most
    /// request errors (unknown sandbox, not running, bad cwd) surface within this window and then
    /// get a proper problem status instead of a 200 followed by an error line; a command that is
    /// slow to print gets its headers anyway once the window passes.
    /// </summary>
    private static readonly TimeSpan HeadStart = TimeSpan.FromMilliseconds(250);

    public async Task ExecuteAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        // Disposing the enumerator (on disconnect or completion) is how the engine learns to
        // tear the guest process down if it is still running.
        await using var events = output.GetAsyncEnumerator(ct);

        var next = events.MoveNextAsync().AsTask();
        await Task.WhenAny(next, Task.Delay(HeadStart, CancellationToken.None));
        if (next.IsFaulted || next.IsCanceled)
            await next; // not started yet: the error middleware answers with a problem

        var response = ctx.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ExecEndpoints.NdjsonMediaType;
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no"; // ask reverse proxies not to hold lines back
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var sawExit = false;
        try
        {
            await response.StartAsync(ct);
            while (await next)
            {
                var item = events.Current;
                await WriteLineAsync(response, ToEvent(item), ct);
                if (item.Kind == ExecOutputKind.Exit)
                {
                    sawExit = true;
                    break;
                }
                next = events.MoveNextAsync().AsTask();
            }
            if (!sawExit)
            {
                log.LogWarning("Exec stream ended without an exit event");
                await WriteErrorAsync(response, ErrorCodes.Internal, "the command's output ended without an exit status", ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Client disconnected; nothing more to say.
        }
        catch (BoughException ex)
        {
            log.LogInformation("Exec stream failed after start: {Code}: {Message}", ex.Code, ex.Message);
            await TryWriteErrorAsync(response, ex.Code, ex.Message, ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            log.LogError(ex, "Exec stream failed after start");
            await TryWriteErrorAsync(response, ErrorCodes.Internal, "an unexpected error occurred; the daemon log has the details", ct);
        }
        finally
        {
            // An async iterator must not be disposed while a MoveNextAsync is in flight (e.g.
            // StartAsync failed on a dead connection); the cancelled token ends it promptly.
            if (!next.IsCompleted)
                await next.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private static ExecEvent ToEvent(ExecOutput o) => o.Kind switch
    {
        ExecOutputKind.Stdout => new ExecEvent { Type = "stdout", Data = Convert.ToBase64String(o.Data.Span) },
        ExecOutputKind.Stderr => new ExecEvent { Type = "stderr", Data = Convert.ToBase64String(o.Data.Span) },
        _ => new ExecEvent
        {
            Type = "exit",
            ExitCode = o.ExitCode,
            Signal = o.Signal,
            TimedOut = o.TimedOut,
            DurationMs = o.DurationMs,
        },
    };

    private async Task TryWriteErrorAsync(HttpResponse response, string code, string message, CancellationToken ct)
    {
        try
        {
            await WriteErrorAsync(response, code, message, ct);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            log.LogDebug("Could not deliver the error line: the client is gone");
        }
    }

    private static Task WriteErrorAsync(HttpResponse response, string code, string message, CancellationToken ct) =>
        WriteLineAsync(response, new ExecEvent { Type = "error", Code = code, Message = message }, ct);

    private static async Task WriteLineAsync(HttpResponse response, ExecEvent e, CancellationToken ct)
    {
        var writer = response.BodyWriter;
        using (var json = new Utf8JsonWriter(writer))
            JsonSerializer.Serialize(json, e, BoughJson.Options);
        writer.Write("\n"u8);
        await writer.FlushAsync(ct);
    }
}
