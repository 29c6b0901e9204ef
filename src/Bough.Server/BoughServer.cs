using Bough.Contracts;
using Bough.Dashboard.Hosting;
using Bough.E2b;
using Bough.Server.Endpoints;
using Bough.Server.Http;
using Bough.Server.PortRouting;
using Bough.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bough.Server;

/// <summary>
/// Composition root of the REST API. The daemon (<c>bough serve</c>) and the integration tests
/// both call <see cref="Build"/> so that they exercise exactly the same pipeline; only the
/// engine registration differs.
/// </summary>
public static class BoughServer
{
    /// <summary>
    /// Builds (but does not start) the web application.
    /// </summary>
    /// <param name="options">Where to listen, TLS, and the API token file.</param>
    /// <exception cref="ServerConfigurationException">The listeners or TLS files are refused (see <see cref="ServerOptions.Validate"/>).</exception>
    /// <exception cref="InvalidDataException">The token file exists but holds no usable token.</exception>
    /// <param name="addEngine">
    /// Registers the engine's services (<see cref="Bough.Engine.ISandboxService"/>,
    /// <see cref="Bough.Engine.IBranchingService"/>, <see cref="Bough.Engine.ISnapshotService"/>,
    /// images and templates, and the hosted services they need) into DI. Endpoints resolve them
    /// per request, so singletons are expected.
    /// </param>
    /// <param name="logging">
    /// Optional logging customisation, applied after Bough's defaults (console; ASP.NET Core
    /// request chatter at Warning) so the caller can override them or clear providers.
    /// </param>
    public static WebApplication Build(
        ServerOptions options,
        Action<IServiceCollection> addEngine,
        Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(addEngine);
        var listen = ListenPlan.Create(options);
        listen.RemoveStaleSockets();

        // The slim builder keeps startup cheap (no HTTPS/IIS/EventSource plumbing) and a fixed
        // content root keeps the daemon from picking up an appsettings.json from whatever
        // directory it happens to be started in.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(BoughServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            Args = [],
        });

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            listen.Apply(k);
        });

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging?.Invoke(builder.Logging);

        // Typed results and the OpenAPI schema generator both use the HTTP JSON options; mirror
        // BoughJson (with the strict numbers JsonBody reads) so that what we document is what we send.
        builder.Services.ConfigureHttpJsonOptions(o => CopyBoughJson(o));
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ctx =>
        {
            // Anything that goes through IProblemDetailsService (framework components) still
            // carries a stable code.
            var status = ctx.ProblemDetails.Status ?? ctx.HttpContext.Response.StatusCode;
            ctx.ProblemDetails.Extensions.TryAdd("code", ProblemWriter.CodeForStatus(status));
        });
        builder.Services.Configure<RouteHandlerOptions>(o =>
        {
            // Binding failures (e.g. ?offset=abc) become BadHttpRequestException, which the error
            // middleware turns into a problem with the framework's explanation as detail,
            // instead of a bare 400 with an empty body.
            o.ThrowOnBadRequest = true;
        });
        builder.Services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((doc, _, _) =>
            {
                doc.Info.Title = "Bough API";
                doc.Info.Description = "Self-hosted microVM sandboxes.";
                return Task.CompletedTask;
            });
            OpenApiSecurity.Configure(o);
        });
        // Created now (not on first request) so a missing token file is written, and an
        // unusable one refused, before the daemon starts listening.
        builder.Services.AddSingleton(sp => new ApiTokenVerifier(options.TokenFile, sp.GetRequiredService<ILogger<ApiTokenVerifier>>()));

        addEngine(builder.Services);
        builder.Services.AddE2b();
        builder.Services.AddPortRouting(options);
        builder.Services.AddDashboard<DashboardTokenCheck>();

        var app = builder.Build();
        _ = app.Services.GetRequiredService<ApiTokenVerifier>();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(BoughServer).FullName!);
        foreach (var warning in listen.Warnings)
            log.LogWarning("{Warning}", warning);
        app.Lifetime.ApplicationStarted.Register(listen.RestrictSockets);
        app.Lifetime.ApplicationStopped.Register(listen.DeleteSockets);

        // Order matters: the Host check and the token come before routing, so a request that
        // fails them learns nothing about which paths exist.
        app.UseMiddleware<ErrorHandlingMiddleware>();
        app.UseStatusCodePages(ctx => ProblemWriter.WriteForBareStatusAsync(ctx.HttpContext));
        app.UseMiddleware<LoopbackHostFilterMiddleware>();
        // <port>-<id>.<domain> goes to the sandbox's own app and never reaches the API (nor needs its token).
        app.UseMiddleware<PortRoutingMiddleware>();
        // Before the token check: it marks upgrade requests, whose token may come as a subprotocol.
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseE2b(); // E2B drop-in: envd requests (own per-sandbox token) end here; control-plane routes sit behind the token
        app.UseDashboardHeaders(); // CSP and friends for /ui/…, which the token check lets through
        app.UseMiddleware<ApiTokenMiddleware>();
        app.UseRouting();
        app.UseAntiforgery(); // the dashboard's component endpoints ask for it; the API's endpoints do not

        app.MapOpenApi();
        app.MapSystemEndpoints();
        app.MapPrometheusEndpoint();
        var sandboxes = app.MapGroup("/v1/sandboxes");
        sandboxes.MapSandboxEndpoints();
        sandboxes.MapExecEndpoints();
        sandboxes.MapFileEndpoints();
        sandboxes.MapFileOperationEndpoints();
        sandboxes.MapProcessEndpoints();
        sandboxes.MapLogEndpoints();
        sandboxes.MapSandboxMetricsEndpoints();
        sandboxes.MapSandboxSnapshotEndpoints();
        app.MapSnapshotEndpoints();
        app.MapImagesEndpoints();
        app.MapTemplatesEndpoints();
        app.MapEventEndpoints();
        app.MapDashboard();

        return app;
    }

    private static void CopyBoughJson(JsonOptions target)
    {
        var source = BoughJson.Options;
        var o = target.SerializerOptions;
        o.PropertyNamingPolicy = source.PropertyNamingPolicy;
        o.DictionaryKeyPolicy = source.DictionaryKeyPolicy;
        o.PropertyNameCaseInsensitive = source.PropertyNameCaseInsensitive;
        o.DefaultIgnoreCondition = source.DefaultIgnoreCondition;
        o.NumberHandling = JsonBody.Options.NumberHandling; // request bodies are read strictly; document that
        o.UnmappedMemberHandling = source.UnmappedMemberHandling;
        foreach (var c in source.Converters)
            o.Converters.Add(c);
    }
}
