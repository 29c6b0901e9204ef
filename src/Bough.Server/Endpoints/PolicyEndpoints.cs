using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>A sandbox's lifetime (deadline) and egress policy, changed after create.</summary>
internal static class PolicyEndpoints
{
    public static void MapSandboxPolicyEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/timeout", SetTimeout)
            .WithName("SetSandboxTimeout").WithTags("sandboxes")
            .WithDescription("Sets the running sandbox's deadline to `seconds` from now (extends or shortens it); `onTimeout` (`kill` or `pause`) optionally changes what the deadline does. A paused sandbox has no deadline (409): its resume takes `timeoutSeconds`.")
            .Accepts<SetTimeoutRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500);

        group.MapPut("/{id}/network", UpdateNetwork)
            .WithName("UpdateSandboxNetwork").WithTags("sandboxes")
            .WithDescription("Changes the egress policy of a running or paused sandbox: `internet`, `allowOut`, `denyOut` (IPv4 CIDRs or addresses); fields left out keep their value, an empty list clears it. A running sandbox's firewall follows at once.")
            .Accepts<UpdateNetworkRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500);
    }

    private static async Task<Ok<Sandbox>> SetTimeout(string id, HttpContext ctx, [FromServices] ISandboxPolicies engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<SetTimeoutRequest>(ctx.Request, ct);
        return TypedResults.Ok(await engine.SetTimeoutAsync(id, request, ct));
    }

    private static async Task<Ok<Sandbox>> UpdateNetwork(string id, HttpContext ctx, [FromServices] ISandboxPolicies engine)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<UpdateNetworkRequest>(ctx.Request, ct);
        return TypedResults.Ok(await engine.UpdateNetworkAsync(id, request, ct));
    }
}
