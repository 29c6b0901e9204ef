using System.Text;
using System.Text.Json;
using Bough.Contracts;
using Bough.Engine;
using Bough.Engine.Events;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Bough.Server.Endpoints;

/// <summary>
/// <c>GET /v1/events</c>: the engine's event bus (<see cref="IEngineEvents"/>) as server-sent events, one
/// <c>id:</c>/<c>event:</c>/<c>data:</c> block per event, and a comment every <see cref="KeepAlive"/> while idle so
/// that proxies and clients can tell a quiet stream from a dead one. The token middleware guards it like every
/// other endpoint. It ends when the client goes away or the daemon stops (the web server would otherwise wait for
/// it while draining).
/// </summary>
internal static class EventEndpoints
{
    public const string ContentType = "text/event-stream";

    /// <summary>How long the stream may stay silent before a <c>: keepalive</c> comment.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    private static readonly string[] Categories = ["sandbox", "snapshot", "image"];

    public static void MapEventEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/events", StreamEvents)
            .WithName("StreamEvents").WithTags("events")
            .WithSummary("Server-sent events: `ready` first, then sandbox.created/state/deleted and snapshot.created/deleted as they are " +
                         "committed, image.progress (at most 4/s per image) and image.created/failed/deleted; `resync` means events were " +
                         "dropped for this slow client (list again). ?types=sandbox,snapshot,image filters by category (or exact type). " +
                         "`: keepalive` comments every 15 s while idle.")
            .Produces<BoughEvent>(200, ContentType)
            .ProducesBoughProblems(400, 500);
    }

    private static async Task StreamEvents(
        HttpContext ctx, [FromQuery] string? types, [FromServices] IEngineEvents events, [FromServices] IHostApplicationLifetime host)
    {
        var filter = ParseTypes(types);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, host.ApplicationStopping);
        var ct = linked.Token;

        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = ContentType;
        ctx.Response.Headers.CacheControl = "no-store";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";

        var stream = events.SubscribeAsync(ct).GetAsyncEnumerator(ct);
        var pending = stream.MoveNextAsync().AsTask();
        // One timer at a time: a keepalive may follow an event sooner than 15 s, which costs nothing, whereas a timer
        // per event would pile up thousands on a busy stream.
        var tick = Task.Delay(KeepAlive, ct);
        try
        {
            while (true)
            {
                var first = await Task.WhenAny(pending, tick);
                if (first != pending)
                {
                    await ctx.Response.WriteAsync(": keepalive\n\n", ct);
                    await ctx.Response.Body.FlushAsync(ct);
                    tick = Task.Delay(KeepAlive, ct);
                    continue;
                }
                if (!await pending) return;
                var e = stream.Current;
                pending = stream.MoveNextAsync().AsTask();
                if (!Wanted(e, filter)) continue;
                await ctx.Response.WriteAsync(Format(e), ct);
                await ctx.Response.Body.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client left or the daemon is stopping: the normal end of a stream.
        }
        catch (IOException) when (ct.IsCancellationRequested)
        {
            // A write that raced the client's disconnect.
        }
        finally
        {
            // The subscription ends with the token; an async iterator may only be disposed once its MoveNext is done.
            await linked.CancelAsync();
            try { await pending; }
            catch (OperationCanceledException) { /* ended by the token */ }
            await stream.DisposeAsync();
        }
    }

    /// <summary>One event as an SSE block; JSON has no raw newlines, so <c>data:</c> is always one line.</summary>
    internal static string Format(BoughEvent e)
    {
        var sb = new StringBuilder();
        sb.Append("id: ").Append(e.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("event: ").Append(e.Type).Append('\n');
        sb.Append("data: ").Append(JsonSerializer.Serialize(e, BoughJson.Options)).Append("\n\n");
        return sb.ToString();
    }

    /// <summary>The <c>?types=</c> list (categories or exact types), or null for everything.</summary>
    private static HashSet<string>? ParseTypes(string? types)
    {
        if (string.IsNullOrWhiteSpace(types)) return null;
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in types.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Categories.Contains(EventTypes.Category(t), StringComparer.Ordinal))
                throw new BoughException(ErrorCodes.InvalidRequest,
                    $"unknown event type '{t}' in 'types'; use {string.Join(", ", Categories)} or an exact type such as {EventTypes.SandboxState}");
            set.Add(t);
        }
        return set;
    }

    /// <summary>Ready and resync always pass: a client must know it is subscribed, and when it must re-list.</summary>
    private static bool Wanted(BoughEvent e, HashSet<string>? filter) =>
        filter is null || e.Type is EventTypes.Ready or EventTypes.Resync
        || filter.Contains(e.Type) || filter.Contains(EventTypes.Category(e.Type));
}
