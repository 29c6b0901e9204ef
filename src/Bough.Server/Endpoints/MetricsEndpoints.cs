using Bough.Engine.Metrics;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>What sandboxes use (<see cref="ISandboxMetrics"/>): one sandbox as JSON, and everything as Prometheus text.</summary>
internal static class MetricsEndpoints
{
    public static void MapSandboxMetricsEndpoints(this RouteGroupBuilder sandboxes)
    {
        sandboxes.MapGet("/{id}/metrics", GetSandboxMetrics)
            .WithName("GetSandboxMetrics").WithTags("sandboxes")
            .WithSummary("One sample, measured from the host: CPU % of its vCPUs over 250 ms, QEMU's resident memory, overlay disk size. " +
                         "CPU and memory are null unless it runs.")
            .ProducesBoughProblems(404, 500);
    }

    public static void MapPrometheusEndpoint(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", GetPrometheus)
            .WithName("GetPrometheusMetrics").WithTags("system")
            .WithSummary("Prometheus text exposition: per-sandbox gauges (labels sandbox, state), sandboxes by state, host committed memory.")
            .Produces<string>(200, PrometheusText.ContentType);
    }

    private static async Task<Ok<SandboxUsage>> GetSandboxMetrics(string id, [FromServices] ISandboxMetrics metrics, CancellationToken ct) =>
        TypedResults.Ok(await metrics.SampleAsync(id, ct));

    private static async Task GetPrometheus(HttpContext ctx, [FromServices] ISandboxMetrics metrics)
    {
        var ct = ctx.RequestAborted;
        var text = PrometheusText.Render(await metrics.SampleAllAsync(ct), metrics.HostMemory());
        ctx.Response.ContentType = PrometheusText.ContentType;
        ctx.Response.Headers.CacheControl = "no-store";
        await ctx.Response.WriteAsync(text, ct);
    }
}
