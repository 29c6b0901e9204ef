using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>The sandbox's serial console log.</summary>
internal static class LogEndpoints
{
    public static void MapLogEndpoints(this RouteGroupBuilder group)
    {
        group.MapGet("/{id}/logs", GetLogs)
            .WithName("GetLogs").WithTags("sandboxes")
            .WithSummary("Console log as text; ?offset=N skips the first N bytes (for polling with `logs --follow`).")
            .Produces<string>(200, "text/plain")
            .ProducesBoughProblems(400, 404, 500);
    }

    private static async Task GetLogs(
        string id, [FromQuery] long? offset, HttpContext ctx, [FromServices] ISandboxService engine)
    {
        var ct = ctx.RequestAborted;
        if (offset is < 0)
            throw new BoughException(ErrorCodes.InvalidRequest, "query parameter 'offset' must be >= 0");

        await using var log = await engine.OpenConsoleLogAsync(id, ct);
        await SkipAsync(log, offset ?? 0, ct);

        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-store";
        await log.CopyToAsync(ctx.Response.Body, ct);
    }

    private static async Task SkipAsync(Stream stream, long count, CancellationToken ct)
    {
        if (count == 0)
            return;
        if (stream.CanSeek)
        {
            stream.Seek(Math.Min(count, stream.Length), SeekOrigin.Begin);
            return;
        }
        var buffer = new byte[64 * 1024];
        while (count > 0)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), ct);
            if (n == 0)
                break;
            count -= n;
        }
    }
}
