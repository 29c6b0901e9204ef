using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.OpenApi;

namespace Bough.Server.Endpoints;

/// <summary>Sandbox lifecycle: create (from an image or a snapshot), list, inspect, delete.</summary>
internal static class SandboxEndpoints
{
    public static void MapSandboxEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/", Create)
            .WithName("CreateSandbox").WithTags("sandboxes")
            .WithDescription("Starts a sandbox from `image`, or from `snapshot` or `template` (a fork of the template's snapshot). From an image, the first create of an (image, vcpus, memoryMiB) shape boots cold and publishes a boot snapshot (kind `boot`); later creates of that shape restore from it with their own identity (hostname, clock, entropy, env), which is much faster; `coldBoot: true` boots the kernel anyway. The answer's `boot` says which happened (`cold` or `restored`). With `snapshot`/`template` and `count` the answer is an array of `count` sandboxes. `timeoutSeconds` (else the daemon default) counts from when it runs; `onTimeout` is `kill` (default) or `pause`; `network` holds `allowOut`/`denyOut` IPv4 CIDRs. 503 `capacity_exceeded` when the host has no room.")
            .Accepts<CreateSandboxRequest>("application/json")
            .AddOpenApiOperationTransformer(DocumentListAnswerAsync)
            .ProducesBoughProblems(400, 404, 409, 413, 500, 502, 503);

        group.MapGet("/", List)
            .WithName("ListSandboxes").WithTags("sandboxes")
            .ProducesBoughProblems(500);

        group.MapGet("/{id}", Get)
            .WithName("GetSandbox").WithTags("sandboxes")
            .ProducesBoughProblems(404, 500);

        group.MapDelete("/{id}", Delete)
            .WithName("DeleteSandbox").WithTags("sandboxes")
            .ProducesBoughProblems(404, 409, 500);

        // Lifetime and egress policy of an existing sandbox (PolicyEndpoints.cs).
        group.MapSandboxPolicyEndpoints();
    }

    /// <param name="snapshots">
    /// Optional so that plain creates keep working in a daemon without snapshot support; only a
    /// request that names a snapshot needs it.
    /// </param>
    private static async Task<Results<Created<Sandbox>, Created<IReadOnlyList<Sandbox>>>> Create(
        HttpContext ctx, [FromServices] ISandboxService engine, [FromServices] IBranchingService? snapshots,
        [FromServices] ITemplateService? templates)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<CreateSandboxRequest>(ctx.Request, ct);
        if (request.Template is not null)
        {
            if (request.Image is not null || request.Snapshot is not null)
                throw BoughException.Invalid("'template' excludes 'image' and 'snapshot' (a template fixes both)");
            if (templates is null)
                throw new BoughException(ErrorCodes.Internal, "this daemon was started without template support");
            return Many(request, await templates.CreateSandboxesAsync(request, ct));
        }
        if (request.Snapshot is null)
        {
            if (request.Count is not null)
                throw BoughException.Invalid("field 'count' only applies with 'snapshot' or 'template' (to start several sandboxes from one snapshot)");
            var sandbox = await engine.CreateAsync(request, ct);
            return TypedResults.Created(Location(sandbox), sandbox);
        }

        if (snapshots is null)
            throw new BoughException(ErrorCodes.Internal, "this daemon was started without snapshot support");
        return Many(request, await snapshots.CreateFromSnapshotAsync(request, ct));
    }

    /// <summary>With <c>count</c> the answer is a list; without it, the one sandbox.</summary>
    private static Results<Created<Sandbox>, Created<IReadOnlyList<Sandbox>>> Many(CreateSandboxRequest request, IReadOnlyList<Sandbox> started)
    {
        if (request.Count is not null)
            return TypedResults.Created((string?)null, started);
        if (started.Count != 1)
            throw new BoughException(ErrorCodes.Internal, $"the engine started {started.Count} sandboxes where one was asked for");
        return TypedResults.Created(Location(started[0]), started[0]);
    }

    internal static string Location(Sandbox sandbox) => $"/v1/sandboxes/{Uri.EscapeDataString(sandbox.Id)}";

    /// <summary>
    /// Documents the 201 answer as "a sandbox, or an array of them": response metadata is keyed
    /// by status code, so the two typed results cannot both describe 201 the ordinary way.
    /// </summary>
    private static async Task DocumentListAnswerAsync(OpenApiOperation op, OpenApiOperationTransformerContext ctx, CancellationToken ct)
    {
        if (op.Responses?.TryGetValue("201", out var created) != true || created!.Content is not { } content)
            return;
        var one = await ctx.GetOrCreateSchemaAsync(typeof(Sandbox), null, ct);
        var many = await ctx.GetOrCreateSchemaAsync(typeof(IReadOnlyList<Sandbox>), null, ct);
        foreach (var media in content.Values)
            media.Schema = new OpenApiSchema { OneOf = [one, many] };
    }

    private static async Task<Ok<IReadOnlyList<Sandbox>>> List([FromServices] ISandboxService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.ListAsync(ct));

    private static async Task<Ok<Sandbox>> Get(string id, [FromServices] ISandboxService engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.GetAsync(id, ct));

    private static async Task<NoContent> Delete(string id, [FromServices] ISandboxService engine, CancellationToken ct)
    {
        await engine.DeleteAsync(id, ct);
        return TypedResults.NoContent();
    }
}
