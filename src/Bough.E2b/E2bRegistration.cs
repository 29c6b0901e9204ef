using Bough.E2b.ControlPlane;
using Bough.E2b.Envd;
using Bough.E2b.Envd.Connect;
using Bough.E2b.Envd.Filesystem;
using Bough.E2b.Envd.Process;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bough.E2b;

/// <summary>
/// Wires the E2B surface into a Bough server: <see cref="AddE2b"/> with the other services,
/// <see cref="UseE2b"/> in the pipeline before the API token check. The unmodified E2B SDK then runs
/// with <c>E2B_API_URL</c> and <c>E2B_SANDBOX_URL</c> pointing at the daemon and <c>E2B_API_KEY</c>
/// set to its token. Bough's own <c>/v1</c> API is untouched: no E2B path collides with it.
/// </summary>
public static class E2bRegistration
{
    public static IServiceCollection AddE2b(this IServiceCollection services)
    {
        services.AddSingleton<BaseTemplate>();
        services.AddSingleton<TemplateResolver>();
        services.AddSingleton<FilesHandler>();
        services.AddSingleton<ConnectDispatcher>();
        // envd's Connect methods: add an implementation of IConnectUnaryMethod or
        // IConnectStreamMethod here and the dispatcher routes it; the rest answer unimplemented.
        services.AddSingleton<IConnectStreamMethod, StartMethod>();
        services.AddSingleton<IConnectStreamMethod, ConnectMethod>();
        services.AddSingleton<IConnectUnaryMethod, ListMethod>();
        services.AddSingleton<IConnectUnaryMethod, SendInputMethod>();
        services.AddSingleton<IConnectUnaryMethod, SendSignalMethod>();
        services.AddSingleton<IConnectUnaryMethod, CloseStdinMethod>();
        services.AddSingleton<IConnectUnaryMethod, UpdateMethod>();
        services.AddSingleton<IConnectUnaryMethod, StatMethod>();
        services.AddSingleton<IConnectUnaryMethod, ListDirMethod>();
        services.AddSingleton<IConnectUnaryMethod, MakeDirMethod>();
        services.AddSingleton<IConnectUnaryMethod, MoveMethod>();
        services.AddSingleton<IConnectUnaryMethod, RemoveMethod>();
        services.AddSingleton<IConnectStreamMethod, WatchDirMethod>();
        services.AddSingleton<PollingWatchers>();
        services.AddSingleton<IConnectUnaryMethod, CreateWatcherMethod>();
        services.AddSingleton<IConnectUnaryMethod, GetWatcherEventsMethod>();
        services.AddSingleton<IConnectUnaryMethod, RemoveWatcherMethod>();
        return services;
    }

    /// <summary>
    /// Adds the envd middleware (it must come after the Host check and before the API token check:
    /// envd requests carry the sandbox's own token, not the API key) and maps the control plane,
    /// whose routes sit behind the API token like every other route.
    /// </summary>
    public static WebApplication UseE2b(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<EnvdMiddleware>();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Bough.E2b.ControlPlane");
        // E2B's API is E2B's to document; Bough's OpenAPI document stays about /v1.
        var group = app.MapGroup("").ExcludeFromDescription().AddEndpointFilter(async (ctx, next) =>
        {
            try
            {
                return await next(ctx);
            }
            catch (Exception ex) when (!ctx.HttpContext.RequestAborted.IsCancellationRequested && ex is not OperationCanceledException)
            {
                var (status, message) = E2bJson.Describe(ex);
                if (status >= 500)
                    log.LogWarning(ex, "E2B {Method} {Path} failed", ctx.HttpContext.Request.Method, ctx.HttpContext.Request.Path);
                return Results.Json(new E2bError(status, message), E2bJson.Options, statusCode: status);
            }
        });
        group.MapSandboxRoutes();
        group.MapListRoutes();
        group.MapBranchRoutes();
        return app;
    }
}
