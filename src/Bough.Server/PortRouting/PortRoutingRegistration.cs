using Bough.E2b.ControlPlane;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;

namespace Bough.Server.PortRouting;

/// <summary>Wires port routing (<see cref="PortRoutingMiddleware"/>) and announces its domain to the E2B control plane.</summary>
internal static class PortRoutingRegistration
{
    public static IServiceCollection AddPortRouting(this IServiceCollection services, ServerOptions options)
    {
        SandboxDomain.Normalise(options.Domain); // refuse a bad --domain before anything starts
        services.AddHttpForwarder();
        services.AddSingleton<ForwarderClient>();
        services.AddSingleton<PortForwards>();
        services.AddSingleton(sp => new SandboxDomain(options, sp.GetRequiredService<IServer>()));
        services.AddSingleton<ISandboxDomain>(sp => sp.GetRequiredService<SandboxDomain>());
        return services;
    }
}
