using Bough.Contracts;
using Bough.Engine;
using Bough.Engine.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.E2b.ControlPlane;

/// <summary>Fork (a Bough branch), the egress policy and the metrics of an E2B sandbox.</summary>
internal static class BranchRoutes
{
    public const int MaxForks = 100;

    public static void MapBranchRoutes(this IEndpointRouteBuilder app)
    {
        app.MapPost("/sandboxes/{id}/fork", Fork);
        app.MapPut("/sandboxes/{id}/network", UpdateNetwork);
        app.MapGet("/sandboxes/{id}/metrics", Metrics);
    }

    /// <summary>
    /// One capture, <c>count</c> children started from it (all or none). Each child gets its own
    /// access token and keeps the source's metadata and template id; the snapshot is not kept.
    /// </summary>
    private static async Task<IResult> Fork(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] IBranchingService branching)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<TimeoutBody>(ctx.Request, ct);
        var count = body?.Count ?? 1;
        if (count is < 1 or > MaxForks)
            throw E2bException.Invalid($"count must be from 1 to {MaxForks}");
        var source = await SandboxRoutes.FindAsync(sandboxes, id, ct);
        var children = Enumerable.Range(0, count).Select(_ => new BranchChild
        {
            Metadata = new Dictionary<string, string>(source.Metadata, StringComparer.Ordinal)
            {
                [E2bNames.AccessTokenKey] = SandboxViews.NewAccessToken(),
            },
        }).ToList();
        var result = await branching.BranchAsync(id, new BranchRequest
        {
            Count = count,
            Children = children,
            TimeoutSeconds = body?.Timeout ?? E2bNames.DefaultTimeoutSeconds,
            OnTimeout = source.OnTimeout,
        }, ct);
        var domain = SandboxDomains.Of(ctx);
        var entries = result.Children.Select(c => new ForkEntry(SandboxViews.ToSandbox(c, domain))).ToList();
        return Results.Json(entries, E2bJson.Options, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> UpdateNetwork(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] ISandboxPolicies policies)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<NetworkConfig>(ctx.Request, ct) ?? new NetworkConfig();
        await SandboxRoutes.FindAsync(sandboxes, id, ct);
        await policies.UpdateNetworkAsync(id, new UpdateNetworkRequest
        {
            Internet = body.AllowInternetAccess,
            AllowOut = body.AllowOut,
            DenyOut = body.DenyOut,
        }, ct);
        return Results.NoContent();
    }

    private static async Task<IResult> Metrics(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] ISandboxMetrics metrics)
    {
        var ct = ctx.RequestAborted;
        var sandbox = await SandboxRoutes.FindAsync(sandboxes, id, ct);
        if (sandbox.State != SandboxStates.Running)
            return Results.Json(Array.Empty<E2bMetric>(), E2bJson.Options);
        var sample = E2bMetrics.From(await metrics.SampleAsync(id, ct));
        return Results.Json(sample is null ? Array.Empty<E2bMetric>() : new[] { sample }, E2bJson.Options);
    }
}
