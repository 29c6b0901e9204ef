using System.Globalization;
using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Bough.Server.PortRouting;

/// <summary>
/// Serves <c>&lt;port&gt;-&lt;sandbox id&gt;.&lt;domain&gt;</c> (<see cref="SandboxDomain"/>) by forwarding the
/// request, WebSocket upgrades and streamed bodies included, to that port in that sandbox through a
/// loopback forward of its VM (<see cref="PortForwards"/>), with YARP's <see cref="IHttpForwarder"/>.
/// <para>
/// It sits after the Host check and before the API token check, and such a request ends here: the app
/// behind the port is the sandbox's own and answers for itself, as E2B's public sandbox traffic does, so
/// no Bough token is asked for, and no request under a sandbox's name ever reaches the Bough API. Port
/// 49983 is envd's in E2B: that one is handed to the E2B envd surface (which checks the sandbox's access
/// token) instead of the guest.
/// </para>
/// Failures are 502 problems: <c>sandbox_not_found</c>, <c>sandbox_not_running</c>, and
/// <c>port_unreachable</c> when nothing in the guest accepts on the port.
/// </summary>
internal sealed class PortRoutingMiddleware(
    RequestDelegate next, SandboxDomain domain, PortForwards forwards, IHttpForwarder forwarder, ForwarderClient client,
    ILogger<PortRoutingMiddleware> log)
{
    /// <summary>The port of envd in an E2B sandbox; the SDK reaches it as <c>49983-&lt;id&gt;.&lt;domain&gt;</c> when no E2B_SANDBOX_URL is set.</summary>
    internal const int EnvdPort = 49983;

    /// <summary>The headers by which the E2B SDK names a sandbox and port to a shared envd URL (E2B_SANDBOX_URL).</summary>
    private const string SandboxIdHeader = "E2b-Sandbox-Id", SandboxPortHeader = "E2b-Sandbox-Port";

    /// <summary>
    /// YARP's default cuts an exchange after 100 s without a byte either way; a guest app's WebSocket or long
    /// poll may legitimately be quiet longer (a dev server's reload socket), so the bound is ten minutes.
    /// </summary>
    private static readonly ForwarderRequestConfig Config = new() { ActivityTimeout = TimeSpan.FromMinutes(10) };

    public async Task InvokeAsync(HttpContext ctx)
    {
        if (!domain.TryMatch(ctx.Request.Host, out var route))
        {
            await next(ctx);
            return;
        }
        if (route.Port == EnvdPort)
        {
            ctx.Request.Headers[SandboxIdHeader] = route.SandboxId;
            ctx.Request.Headers[SandboxPortHeader] = EnvdPort.ToString(CultureInfo.InvariantCulture);
            await next(ctx);
            return;
        }
        // The guest app's own empty 404s and 500s are its answer, not the daemon's to dress up; its bodies are
        // its own size (the API's request limit is about what the daemon buffers, and this streams).
        if (ctx.Features.Get<IStatusCodePagesFeature>() is { } pages) pages.Enabled = false;
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;

        int hostPort;
        try
        {
            hostPort = await forwards.ResolveAsync(route.SandboxId, route.Port, ctx.RequestAborted);
        }
        catch (BoughException ex) when (ex.Code is ErrorCodes.SandboxNotFound or ErrorCodes.SandboxNotRunning)
        {
            await ProblemWriter.WriteAsync(ctx, StatusCodes.Status502BadGateway, ex.Code, ex.Message);
            return;
        }

        var target = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{hostPort}/");
        var error = await forwarder.SendAsync(ctx, target, client.Invoker, Config, HttpTransformer.Default);
        if (error == ForwarderError.None) return;
        var detail = ctx.Features.Get<IForwarderErrorFeature>()?.Exception?.Message;
        log.LogDebug("port {Port} of {Id}: forward failed ({Error}): {Detail}", route.Port, route.SandboxId, error, detail);
        if (ctx.Response.HasStarted || error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled)
            return; // YARP has already aborted the exchange; nothing more can be said to the client
        await ProblemWriter.WriteAsync(ctx, StatusCodes.Status502BadGateway, ProblemWriter.PortUnreachableCode,
            $"nothing answered on port {route.Port} of sandbox {route.SandboxId} ({error})");
    }
}
