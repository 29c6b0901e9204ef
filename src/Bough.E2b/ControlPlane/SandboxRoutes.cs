using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.E2b.ControlPlane;

/// <summary>E2B's sandbox lifecycle: create, get, kill, timeout, pause, connect (resume). Each is a call into the engine.</summary>
internal static class SandboxRoutes
{
    public static void MapSandboxRoutes(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v2/sandboxes", Create);
        app.MapGet("/sandboxes/{id}", Get);
        app.MapDelete("/sandboxes/{id}", Kill);
        app.MapPost("/sandboxes/{id}/timeout", SetTimeout);
        app.MapPost("/sandboxes/{id}/pause", Pause);
        app.MapPost("/v2/sandboxes/{id}/connect", Connect);
    }

    private static async Task<IResult> Create(HttpContext ctx, [FromServices] TemplateResolver resolver,
        [FromServices] ISandboxService sandboxes, [FromServices] IBranchingService branching, [FromServices] ITemplateService templates)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<NewSandbox>(ctx.Request, ct) ?? new NewSandbox();
        var templateId = string.IsNullOrEmpty(body.TemplateId) ? E2bNames.BaseTemplateId : body.TemplateId;
        if (body.Timeout is <= 0)
            throw E2bException.Invalid("timeout must be a positive number of seconds");
        var metadata = new Dictionary<string, string>(body.Metadata ?? [], StringComparer.Ordinal);
        if (metadata.Keys.Any(k => k.StartsWith(E2bNames.ReservedPrefix, StringComparison.Ordinal)))
            throw E2bException.Invalid($"metadata keys starting with '{E2bNames.ReservedPrefix}' are reserved");
        metadata[E2bNames.AccessTokenKey] = SandboxViews.NewAccessToken();
        metadata[E2bNames.TemplateIdKey] = templateId;

        var target = await resolver.ResolveAsync(templateId, ct);
        var request = target with
        {
            Env = body.EnvVars,
            Metadata = metadata,
            TimeoutSeconds = body.Timeout ?? E2bNames.DefaultTimeoutSeconds,
            OnTimeout = body.AutoPause == true ? TimeoutActions.Pause : TimeoutActions.Kill,
            Internet = body.AllowInternetAccess,
            Network = body.Network is { } n ? new NetworkRules { AllowOut = n.AllowOut, DenyOut = n.DenyOut } : null,
        };
        var sandbox = request.Template is not null ? Single(await templates.CreateSandboxesAsync(request, ct))
            : request.Snapshot is not null ? Single(await branching.CreateFromSnapshotAsync(request, ct))
            : await sandboxes.CreateAsync(request, ct);
        return Results.Json(SandboxViews.ToSandbox(sandbox, SandboxDomains.Of(ctx)), E2bJson.Options, statusCode: StatusCodes.Status201Created);
    }

    private static Sandbox Single(IReadOnlyList<Sandbox> started) =>
        started.Count == 1 ? started[0] : throw new E2bException(500, $"the engine started {started.Count} sandboxes where one was asked for");

    private static async Task<IResult> Get(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes) =>
        Results.Json(SandboxViews.ToDetail(await FindAsync(sandboxes, id, ctx.RequestAborted), detail: true, SandboxDomains.Of(ctx)),
            E2bJson.Options);

    private static async Task<IResult> Kill(string id, [FromServices] ISandboxService sandboxes, CancellationToken ct)
    {
        await FindAsync(sandboxes, id, ct);
        await sandboxes.DeleteAsync(id, ct);
        return Results.NoContent();
    }

    private static async Task<IResult> SetTimeout(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] ISandboxPolicies policies)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<TimeoutBody>(ctx.Request, ct);
        if (body?.Timeout is not { } seconds || seconds <= 0)
            throw E2bException.Invalid("field 'timeout' (seconds, > 0) is required");
        await FindAsync(sandboxes, id, ct);
        await policies.SetTimeoutAsync(id, new SetTimeoutRequest { Seconds = seconds }, ct);
        return Results.NoContent();
    }

    private static async Task<IResult> Pause(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] IBranchingService branching)
    {
        var ct = ctx.RequestAborted;
        await E2bJson.ReadOptionalAsync<TimeoutBody>(ctx.Request, ct); // {} or {"memory":false}: Bough always keeps memory
        var sandbox = await FindAsync(sandboxes, id, ct);
        if (sandbox.State == SandboxStates.Paused)
            throw new E2bException(409, $"sandbox {id} is already paused");
        await branching.PauseAsync(id, ct);
        return Results.NoContent();
    }

    /// <summary>Resumes a paused sandbox (201) or extends a running one's lifetime (200), answering with what the SDK needs to talk to it.</summary>
    private static async Task<IResult> Connect(string id, HttpContext ctx, [FromServices] ISandboxService sandboxes,
        [FromServices] IBranchingService branching, [FromServices] ISandboxPolicies policies, [FromServices] TimeProvider clock)
    {
        var ct = ctx.RequestAborted;
        var body = await E2bJson.ReadOptionalAsync<TimeoutBody>(ctx.Request, ct);
        var seconds = body?.Timeout ?? E2bNames.DefaultTimeoutSeconds;
        if (seconds <= 0)
            throw E2bException.Invalid("timeout must be a positive number of seconds");
        var sandbox = await FindAsync(sandboxes, id, ct);
        if (sandbox.State == SandboxStates.Paused)
        {
            var resumed = await branching.ResumeAsync(id, new ResumeRequest { TimeoutSeconds = seconds }, ct);
            return Results.Json(SandboxViews.ToSandbox(resumed, SandboxDomains.Of(ctx)), E2bJson.Options, statusCode: StatusCodes.Status201Created);
        }
        if (sandbox.State != SandboxStates.Running)
            throw E2bException.NotFound($"sandbox {id} is {sandbox.State}, not running or paused");
        // Connecting never shortens a lifetime, as in E2B.
        var wanted = clock.GetUtcNow().AddSeconds(seconds);
        if (sandbox.EndAt is { } end && end < wanted)
            sandbox = await policies.SetTimeoutAsync(id, new SetTimeoutRequest { Seconds = seconds }, ct);
        return Results.Json(SandboxViews.ToSandbox(sandbox, SandboxDomains.Of(ctx)), E2bJson.Options);
    }

    /// <summary>The sandbox, if it is one made through E2B; others (Bough's own) are not visible here.</summary>
    internal static async Task<Sandbox> FindAsync(ISandboxService sandboxes, string id, CancellationToken ct)
    {
        var sandbox = await sandboxes.GetAsync(id, ct);
        return SandboxViews.IsE2b(sandbox) ? sandbox : throw E2bException.NotFound($"sandbox {id} not found");
    }
}
