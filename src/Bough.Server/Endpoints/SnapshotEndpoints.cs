using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>
/// Live snapshots, branching, pause/resume, the snapshot catalog and the lineage tree. The
/// engine is resolved per request, so the daemon starts (and the rest of the API works) even
/// where no <see cref="ISnapshotService"/> is registered.
/// </summary>
internal static class SnapshotEndpoints
{
    /// <summary>The per-sandbox operations, under <c>/v1/sandboxes</c>.</summary>
    public static void MapSandboxSnapshotEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/snapshots", Capture)
            .WithName("CreateSnapshot").WithTags("snapshots")
            .WithDescription("Captures the running sandbox (memory, devices, disk) as an immutable snapshot; the sandbox keeps running. The body is optional.")
            .Accepts<CreateSnapshotRequest>(isOptional: true, "application/json")
            .ProducesBoughProblems(400, 404, 409, 429, 500, 502, 503);

        group.MapPost("/{id}/branch", Branch)
            .WithName("BranchSandbox").WithTags("snapshots")
            .WithDescription("Captures the running sandbox, then starts `count` (default 1) children from the capture; `children[i]` adds env/metadata for child i. Children inherit the source's `internet` and `network` unless given; their lifetime is `timeoutSeconds` (else the daemon default), not what is left of the source's. 503 `capacity_exceeded` (before any capture) when the children would not fit. The body is optional.")
            .Accepts<BranchRequest>(isOptional: true, "application/json")
            .ProducesBoughProblems(400, 404, 409, 429, 500, 502, 503);

        group.MapPost("/{id}/pause", Pause)
            .WithName("PauseSandbox").WithTags("sandboxes")
            .WithDescription("Saves the sandbox to disk and stops its VM process; `resume` continues it where it stopped.")
            .ProducesBoughProblems(404, 409, 429, 500, 502, 503);

        group.MapPost("/{id}/resume", Resume)
            .WithName("ResumeSandbox").WithTags("sandboxes")
            .WithDescription("Restores a paused sandbox. It starts a new lifetime: `timeoutSeconds` (else the daemon default), `onTimeout` (else the sandbox's). 503 `capacity_exceeded` when it would not fit. The body is optional.")
            .Accepts<ResumeRequest>(isOptional: true, "application/json")
            .ProducesBoughProblems(400, 404, 409, 500, 502, 503);
    }

    /// <summary><c>/v1/snapshots</c> and <c>/v1/tree</c>.</summary>
    public static void MapSnapshotEndpoints(this IEndpointRouteBuilder app)
    {
        var snapshots = app.MapGroup("/v1/snapshots");

        snapshots.MapGet("/", List)
            .WithName("ListSnapshots").WithTags("snapshots")
            .ProducesBoughProblems(500);

        snapshots.MapGet("/{idOrTag}", Get)
            .WithName("GetSnapshot").WithTags("snapshots")
            .WithDescription("One snapshot by id or tag, with its ancestors (oldest first), child snapshots and the sandboxes started from it.")
            .ProducesBoughProblems(404, 500);

        snapshots.MapDelete("/{idOrTag}", Delete)
            .WithName("DeleteSnapshot").WithTags("snapshots")
            .WithDescription("Deletes a snapshot. While child snapshots or sandboxes depend on it the answer is 409 snapshot_in_use; `cascade=true` also deletes descendant snapshots (still 409 while sandboxes use any of them). A boot snapshot (kind `boot`) may be deleted once unused: the next create of its shape boots cold and publishes a new one.")
            .ProducesBoughProblems(400, 404, 409, 500);

        snapshots.MapPost("/{idOrTag}/compact", Compact)
            .WithName("CompactSnapshot").WithTags("snapshots")
            .WithDescription("Writes a standalone copy of the snapshot (no ancestors, same content) and returns it. The body is optional.")
            .Accepts<CreateSnapshotRequest>(isOptional: true, "application/json")
            .ProducesBoughProblems(400, 404, 409, 500);

        app.MapGet("/v1/tree", GetTree)
            .WithName("GetTree").WithTags("snapshots")
            .WithDescription("The lineage forest: snapshots (with their `snapshotKind`, e.g. `boot`) contain their child snapshots and the sandboxes started from them.")
            .ProducesBoughProblems(500);
    }

    private static async Task<Created<Snapshot>> Capture(string id, HttpContext ctx, [FromServices] IBranchingService engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadOptionalAsync<CreateSnapshotRequest>(ctx.Request, ct);
        var snapshot = await engine.SnapshotAsync(id, request?.Tag, ct);
        return TypedResults.Created(Location(snapshot), snapshot);
    }

    private static async Task<Created<BranchResult>> Branch(string id, HttpContext ctx, [FromServices] IBranchingService engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadOptionalAsync<BranchRequest>(ctx.Request, ct) ?? new BranchRequest();
        if (request.Children is { } children)
        {
            // Null entries would otherwise reach the engine as "no overrides" by accident.
            for (var i = 0; i < children.Count; i++)
            {
                if (children[i] is null)
                    throw BoughException.Invalid($"wrong type at $.children[{i}]: expected an object, got null");
            }
        }
        var result = await engine.BranchAsync(id, request, ct);
        return TypedResults.Created(Location(result.Snapshot), result);
    }

    private static async Task<Ok<Sandbox>> Pause(string id, [FromServices] IBranchingService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.PauseAsync(id, ct));

    private static async Task<Ok<Sandbox>> Resume(string id, HttpContext ctx, [FromServices] IBranchingService engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadOptionalAsync<ResumeRequest>(ctx.Request, ct);
        return TypedResults.Ok(await engine.ResumeAsync(id, request, ct));
    }

    private static async Task<Ok<IReadOnlyList<Snapshot>>> List([FromServices] ISnapshotService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.ListSnapshotsAsync(ct));

    private static async Task<Ok<Snapshot>> Get(string idOrTag, [FromServices] ISnapshotService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.GetSnapshotAsync(idOrTag, ct));

    private static async Task<NoContent> Delete(
        string idOrTag, [FromQuery] string? cascade, HttpRequest request, [FromServices] ISnapshotService engine, CancellationToken ct)
    {
        await engine.DeleteSnapshotAsync(idOrTag, ParseCascade(cascade, request), ct);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// Parsed here rather than bound as bool: the framework's binding error names the CLR type,
    /// and binding joins a repeated <c>?cascade=</c> into one value.
    /// </summary>
    private static bool ParseCascade(string? cascade, HttpRequest request)
    {
        if (request.Query["cascade"].Count > 1)
            throw BoughException.Invalid("query parameter 'cascade' was given more than once");
        if (string.IsNullOrEmpty(cascade))
            return false;
        return bool.TryParse(cascade, out var value)
            ? value
            : throw BoughException.Invalid($"query parameter 'cascade' must be true or false, got '{cascade}'");
    }

    private static async Task<Created<Snapshot>> Compact(string idOrTag, HttpContext ctx, [FromServices] ISnapshotService engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadOptionalAsync<CreateSnapshotRequest>(ctx.Request, ct);
        var snapshot = await engine.CompactSnapshotAsync(idOrTag, request?.Tag, ct);
        return TypedResults.Created(Location(snapshot), snapshot);
    }

    private static async Task<Ok<LineageTree>> GetTree([FromServices] ISnapshotService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.GetTreeAsync(ct));

    private static string Location(Snapshot snapshot) => $"/v1/snapshots/{Uri.EscapeDataString(snapshot.Id)}";
}
