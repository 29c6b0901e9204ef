using System.Net;
using Bough.Server.Http;
using Bough.Server.PortRouting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Security;

/// <summary>
/// On a connection that arrived at a loopback address, accepts only loopback names in
/// <c>Host</c> (<c>localhost</c>, <c>127.0.0.1</c> and the rest of 127/8, <c>[::1]</c>, each with
/// any port). A web page cannot reach the API by DNS rebinding (its own name resolving to
/// 127.0.0.1) and a guest reaching the host's loopback through a user-mode network gateway
/// gets refused on the name it used. The answer is 421 Misdirected Request, problem+json
/// <c>host_not_allowed</c>: this server does not answer for that name. Requests without a
/// <c>Host</c> (HTTP/1.0) pass: browsers always send one. Unix sockets and non-loopback
/// listeners are not checked (a browser cannot reach the one; the other is addressed by
/// whatever name the operator gave it, and its TLS certificate is what pins the name).
/// Sandbox port names (<c>&lt;port&gt;-&lt;id&gt;.localhost</c> or under <c>--domain</c>) pass too: the next
/// middleware sends them to the sandbox, so they never reach the API, and a rebinding page cannot use
/// them (no one else's DNS answers for <c>.localhost</c> or for the operator's domain).
/// </summary>
internal sealed class LoopbackHostFilterMiddleware(RequestDelegate next, SandboxDomain domain, ILogger<LoopbackHostFilterMiddleware> log)
{
    public Task InvokeAsync(HttpContext ctx)
    {
        var local = ctx.Connection.LocalIpAddress;
        if (local is null || !IPAddress.IsLoopback(local) || IsLoopbackName(ctx.Request.Host) || domain.TryMatch(ctx.Request.Host, out _))
            return next(ctx);

        log.LogDebug("{Method} {Path}: refused Host '{Host}' on loopback", ctx.Request.Method, ctx.Request.Path, ctx.Request.Host.Value);
        return ProblemWriter.WriteAsync(ctx, StatusCodes.Status421MisdirectedRequest, ProblemWriter.HostNotAllowedCode,
            $"this daemon listens on loopback and answers only for localhost, 127.0.0.1 or [::1], not '{ctx.Request.Host.Value}'");
    }

    internal static bool IsLoopbackName(HostString host)
    {
        if (!host.HasValue)
            return true;
        var name = host.Host; // without the port; an IPv6 literal keeps its brackets
        if (name.EndsWith('.'))
            name = name[..^1];
        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        if (name.StartsWith('[') && name.EndsWith(']'))
            name = name[1..^1];
        return IPAddress.TryParse(name, out var ip) && IPAddress.IsLoopback(ip) && IsDottedOrColonLiteral(name);
    }

    /// <summary>
    /// IPAddress.TryParse also accepts "1", "0x7f.1" and other historic shorthands; a Host made of
    /// those is no browser's idea of a loopback literal, so only the canonical forms count.
    /// </summary>
    private static bool IsDottedOrColonLiteral(string name) =>
        name.Contains(':', StringComparison.Ordinal) || name.Count(c => c == '.') == 3;
}
