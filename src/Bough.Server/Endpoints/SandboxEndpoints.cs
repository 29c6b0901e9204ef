using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>Sandbox lifecycle: create, list, inspect, delete.</summary>
internal static class SandboxEndpoints
{
    public static void MapSandboxEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/", Create)
            .WithName("CreateSandbox").WithTags("sandboxes")
            .Accepts<CreateSandboxRequest>("application/json")
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
    }

    private static async Task<Created<Sandbox>> Create(HttpContext ctx, [FromServices] ISandboxService engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<CreateSandboxRequest>(ctx.Request, ct);
        var sandbox = await engine.CreateAsync(request, ct);
        return TypedResults.Created($"/v1/sandboxes/{Uri.EscapeDataString(sandbox.Id)}", sandbox);
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
