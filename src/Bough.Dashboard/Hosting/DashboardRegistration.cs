using Bough.Dashboard.Components;
using Bough.Dashboard.Live;
using Bough.Dashboard.Session;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Bough.Dashboard.Hosting;

/// <summary>
/// Plugs the dashboard into the daemon's web application: its services, and its endpoints under
/// <see cref="BasePath"/> (the document, its embedded assets, the Blazor circuit's hub).
/// </summary>
public static class DashboardRegistration
{
    /// <summary>Where the dashboard lives; the API's token check lets these paths through (they hold no data).</summary>
    public const string BasePath = "/ui";

    /// <summary>
    /// Registers the dashboard. <typeparamref name="TTokenCheck"/> decides whether a pasted token is the API's.
    /// </summary>
    public static IServiceCollection AddDashboard<TTokenCheck>(this IServiceCollection services)
        where TTokenCheck : class, IDashboardTokenCheck
    {
        services.AddSingleton<IDashboardTokenCheck, TTokenCheck>();
        services.AddScoped<DashboardSession>();
        services.AddTransient<LiveFeed>();
        services.AddRazorComponents().AddInteractiveServerComponents(o =>
        {
            // A tab that lost its connection (a daemon restart, a laptop lid) gets a fresh circuit and signs in again
            // from its stored token; keeping disconnected circuits long only holds memory.
            o.DisconnectedCircuitRetentionPeriod = TimeSpan.FromMinutes(1);
        });
        // Circuits and antiforgery tokens need keys, but nothing outlives the daemon's process: keys in memory,
        // no key ring on disk to protect.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        return services;
    }

    /// <summary>Maps the dashboard's endpoints under <see cref="BasePath"/>; needs antiforgery middleware after routing.</summary>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var ui = endpoints.MapGroup(BasePath).ExcludeFromDescription();
        ui.MapGet("/_assets/{**path}", DashboardAssets.Serve);
        ui.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        return endpoints;
    }

    /// <summary>True for a request the dashboard serves (the API's token check lets it through).</summary>
    public static bool IsDashboardPath(PathString path) => path.StartsWithSegments(BasePath, StringComparison.Ordinal);
}
