using System.Reflection;
using System.Runtime.InteropServices;
using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

internal static class SystemEndpoints
{
    public static void MapSystemEndpoints(this IEndpointRouteBuilder app)
    {
        // Liveness only: answers without touching the engine so a wedged VM can't fail it.
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthStatus("ok")))
            .WithName("Health").WithTags("system");

        app.MapGet("/v1/version", GetVersion)
            .WithName("GetVersion").WithTags("system");
    }

    private static Ok<VersionInfo> GetVersion([FromServices] ISandboxService engine) =>
        TypedResults.Ok(new VersionInfo(ProductVersion, "v1", RuntimeInformation.FrameworkDescription, engine.Info.Accel));

    /// <summary>The informational version without the "+commit" suffix the SDK may append.</summary>
    private static string ProductVersion { get; } = ReadVersion();

    private static string ReadVersion()
    {
        var asm = typeof(SystemEndpoints).Assembly;
        var v = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? asm.GetName().Version?.ToString() ?? "0.0.0";
        var plus = v.IndexOf('+');
        return plus >= 0 ? v[..plus] : v;
    }
}
