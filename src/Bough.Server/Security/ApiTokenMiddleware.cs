using Bough.Dashboard.Hosting;
using Bough.Server.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Security;

/// <summary>
/// Lets a request through only with the daemon's token, as <c>Authorization: Bearer &lt;token&gt;</c>
/// or <c>X-API-Key: &lt;token&gt;</c> (what many SDKs send). <c>GET /healthz</c> is the one
/// exception, so supervisors and load balancers can probe liveness without a secret; the dashboard's
/// paths (<c>/ui/…</c>) are the other: they serve its page, its embedded assets and its circuit, which
/// shows nothing until the browser signs in over it with this same token. Runs before routing: without
/// the token nobody learns which API paths exist.
/// </summary>
internal sealed class ApiTokenMiddleware(RequestDelegate next, ApiTokenVerifier verifier, ILogger<ApiTokenMiddleware> log)
{
    public const string ApiKeyHeader = "X-API-Key";

    public Task InvokeAsync(HttpContext ctx)
    {
        if (IsHealthProbe(ctx.Request) || DashboardRegistration.IsDashboardPath(ctx.Request.Path))
            return next(ctx);
        var presented = Presented(ctx.Request);
        if (presented is not null && verifier.Verify(presented))
            return next(ctx);

        log.LogDebug("{Method} {Path}: refused, {Reason}", ctx.Request.Method, ctx.Request.Path,
            presented is null ? "no token" : "wrong token");
        // RFC 6750: the challenge names the scheme, and says invalid_token when one was sent.
        var challenge = presented is null ? "Bearer realm=\"bough\"" : "Bearer realm=\"bough\", error=\"invalid_token\"";
        var detail = presented is null
            ? "this API needs a token: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'; " +
              "`bough token` on the daemon's host prints it (the CLI and the C# client read $BOUGH_TOKEN, else <data dir>/api-token)"
            : "the API token is not valid (it may have been rotated); `bough token` on the daemon's host prints the current one";
        return ProblemWriter.WriteAsync(ctx, StatusCodes.Status401Unauthorized, ProblemWriter.UnauthorizedCode, detail,
            authenticate: challenge);
    }

    private static bool IsHealthProbe(HttpRequest request) =>
        (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
        && string.Equals(request.Path.Value, "/healthz", StringComparison.Ordinal);

    /// <summary>
    /// The credential the client sent, if any: the bearer token, else the API key header, else (on a
    /// WebSocket upgrade only, since browsers cannot set headers there) a subprotocol
    /// <c>bough.token.&lt;token&gt;</c>. Never a query parameter: URLs end up in logs and histories.
    /// </summary>
    private static string? Presented(HttpRequest request)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count == 1 && authorization[0] is { } value
            && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return value["Bearer ".Length..].Trim();
        var key = request.Headers[ApiKeyHeader];
        if (key.Count == 1)
            return key[0]?.Trim();
        return request.HttpContext.WebSockets.IsWebSocketRequest ? FromSubprotocol(request.HttpContext.WebSockets.WebSocketRequestedProtocols) : null;
    }

    public const string TokenSubprotocolPrefix = "bough.token.";

    private static string? FromSubprotocol(IList<string> protocols)
    {
        foreach (var p in protocols)
            if (p.StartsWith(TokenSubprotocolPrefix, StringComparison.Ordinal))
                return p[TokenSubprotocolPrefix.Length..];
        return null;
    }
}
