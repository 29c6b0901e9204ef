using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.E2b.ControlPlane;

/// <summary>E2B's list of sandboxes and its snapshots (list, create, delete).</summary>
internal static class ListRoutes
{
    public static void MapListRoutes(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v2/sandboxes", List);
        app.MapPost("/sandboxes/{id}/snapshots", CreateSnapshot);
        app.MapGet("/snapshots", ListSnapshots);
        app.MapDelete("/templates/{id}", DeleteSnapshot);
    }

    private static async Task<IResult> List(HttpContext ctx, [FromServices] ISandboxService sandboxes)
    {
        var query = ListQuery.Parse(ctx.Request.Query);
        var template = ctx.Request.Query["template"].ToString();
        var all = (await sandboxes.ListAsync(ctx.RequestAborted))
            .Where(SandboxViews.IsE2b)
            .Where(s => SandboxViews.E2bState(s) is { } state && (query.States is null || query.States.Contains(state)))
            .Where(s => query.Metadata.All(kv => s.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value))
            .Where(s => string.IsNullOrEmpty(template) || SandboxViews.TemplateId(s) == template)
            .OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal)
            .Select(s => SandboxViews.ToDetail(s, detail: false))
            .ToList();
        return Results.Json(query.Page(all, ctx.Response), E2bJson.Options);
    }

    /// <summary>A kept, tagged Bough snapshot; <c>Sandbox.create(snapshotID)</c> starts from it (the template resolver finds it).</summary>
    private static async Task<IResult> CreateSnapshot(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] IBranchingService branching)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<SnapshotBody>(ctx.Request, ct);
        await SandboxRoutes.FindAsync(sandboxes, id, ct);
        var snapshot = await branching.SnapshotAsync(id, string.IsNullOrEmpty(body?.Name) ? null : body.Name, ct);
        return Results.Json(ToE2b(snapshot), E2bJson.Options, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> ListSnapshots(HttpContext ctx, [FromServices] ISnapshotService snapshots)
    {
        var query = ListQuery.Parse(ctx.Request.Query);
        var sandboxId = ctx.Request.Query["sandboxID"].ToString();
        var name = ctx.Request.Query["name"].ToString();
        var all = (await snapshots.ListSnapshotsAsync(ctx.RequestAborted))
            .Where(s => s.Kind == "snapshot")
            .Where(s => string.IsNullOrEmpty(sandboxId) || s.SourceSandboxId == sandboxId)
            .Where(s => string.IsNullOrEmpty(name) || s.Tag == name)
            .OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal)
            .Select(ToE2b)
            .ToList();
        return Results.Json(query.Page(all, ctx.Response), E2bJson.Options);
    }

    private static async Task<IResult> DeleteSnapshot(string id, [FromServices] ISnapshotService snapshots, CancellationToken ct)
    {
        await snapshots.DeleteSnapshotAsync(id, cascade: false, ct);
        return Results.NoContent();
    }

    private static E2bSnapshot ToE2b(Snapshot s) => new(s.Id, s.Tag is { } tag ? [tag] : []);
}
