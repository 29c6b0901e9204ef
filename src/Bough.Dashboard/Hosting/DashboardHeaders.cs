using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Bough.Dashboard.Hosting;

/// <summary>
/// Security headers for the dashboard's responses. The page holds the API token, so it may run only its own
/// scripts, talk only to its own origin (the circuit, the REST API, the terminal's WebSocket), never be framed,
/// and never send its address (which may carry a one-time <c>?token=</c>) to anyone as a referrer.
/// Inline styles stay allowed: Blazor's reconnect notice and the terminal emulator set them.
/// </summary>
public static class DashboardHeaders
{
    internal const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>Adds the headers to every response under <see cref="DashboardRegistration.BasePath"/>.</summary>
    public static IApplicationBuilder UseDashboardHeaders(this IApplicationBuilder app) =>
        app.Use((ctx, next) =>
        {
            if (DashboardRegistration.IsDashboardPath(ctx.Request.Path))
            {
                ctx.Response.OnStarting(() =>
                {
                    var h = ctx.Response.Headers;
                    h.ContentSecurityPolicy = ContentSecurityPolicy;
                    h.XContentTypeOptions = "nosniff";
                    h.XFrameOptions = "DENY";
                    h["Referrer-Policy"] = "no-referrer";
                    return Task.CompletedTask;
                });
            }
            return next(ctx);
        });
}
