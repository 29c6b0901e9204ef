using Bough.Contracts;
using Bough.E2b.ControlPlane;
using Bough.E2b.Envd.Connect;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Bough.E2b.Envd;

/// <summary>
/// The envd surface (what runs inside an E2B sandbox on port 49983), served by the daemon for
/// every sandbox at once: a request is envd's when it names its sandbox in <c>E2b-Sandbox-Id</c>
/// and its path is envd's (<c>/health</c>, <c>/files</c>, <c>/process.Process/*</c>,
/// <c>/filesystem.Filesystem/*</c>). It runs before the daemon's API token check and answers those
/// requests itself, checking the sandbox's own access token instead (the SDK sends no API key to
/// envd); everything else passes on untouched. An unknown, gone or not running sandbox is 502, which
/// the SDK reads as "not running".
/// </summary>
internal sealed class EnvdMiddleware(
    RequestDelegate next, ISandboxService sandboxes, FilesHandler files, ConnectDispatcher connect, TimeProvider clock,
    ILogger<EnvdMiddleware> log)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        var id = ctx.Request.Headers[E2bNames.SandboxIdHeader].ToString();
        var path = ctx.Request.Path.Value ?? "";
        var kind = Classify(path);
        if (string.IsNullOrEmpty(id) || kind == Kind.None)
        {
            await next(ctx);
            return;
        }
        try
        {
            var sandbox = await FindRunningAsync(id, ctx.RequestAborted);
            if (sandbox is null)
            {
                await WriteErrorAsync(ctx, kind, 502, $"sandbox {id} is not running (unknown, paused or gone)");
                return;
            }
            var request = EnvdRequest.Create(ctx, sandbox);
            if (!EnvdAuth.IsAllowed(ctx.Request, sandbox, request.User, clock))
            {
                log.LogDebug("envd {Path} for {Id}: refused, wrong or missing access token", path, id);
                await WriteErrorAsync(ctx, kind, 401, "the sandbox's access token (X-Access-Token) is missing or wrong");
                return;
            }
            switch (kind)
            {
                case Kind.Health:
                    ctx.Response.StatusCode = StatusCodes.Status204NoContent;
                    break;
                case Kind.Files:
                    await files.HandleAsync(request);
                    break;
                default:
                    await connect.HandleAsync(request, path);
                    break;
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            log.LogDebug("envd {Path} for {Id}: client disconnected", path, id);
        }
        catch (Exception ex) when (!ctx.Response.HasStarted)
        {
            var (status, message) = E2bJson.Describe(ex);
            if (status >= 500)
                log.LogWarning(ex, "envd {Path} for {Id} failed", path, id);
            await WriteErrorAsync(ctx, kind, status, message);
        }
    }

    private enum Kind { None, Health, Files, Rpc }

    private static Kind Classify(string path) => path switch
    {
        "/health" => Kind.Health,
        "/files" => Kind.Files,
        _ when path.StartsWith("/process.Process/", StringComparison.Ordinal)
            || path.StartsWith("/filesystem.Filesystem/", StringComparison.Ordinal) => Kind.Rpc,
        _ => Kind.None,
    };

    private async Task<Sandbox?> FindRunningAsync(string id, CancellationToken ct)
    {
        try
        {
            var sandbox = await sandboxes.GetAsync(id, ct);
            return sandbox.State == SandboxStates.Running && SandboxViews.IsE2b(sandbox) ? sandbox : null;
        }
        catch (BoughException ex) when (ex.Code is ErrorCodes.SandboxNotFound or ErrorCodes.InvalidRequest)
        {
            return null;
        }
    }

    /// <summary>RPC errors are Connect's JSON error; the plain HTTP ones E2B's <c>{code,message}</c>.</summary>
    private static Task WriteErrorAsync(HttpContext ctx, Kind kind, int status, string message) =>
        kind == Kind.Rpc
            ? ConnectError.WriteUnaryAsync(ctx, status, ConnectError.CodeForStatus(status), message)
            : E2bJson.WriteErrorAsync(ctx, status, message);
}
