using Bough.Catalog;
using Bough.Engine.Sandboxes;
using Bough.Engine.Setup;
using Bough.Vmm;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bough.Engine;

public static class EngineServiceCollectionExtensions
{
    /// <summary>
    /// Registers the engine for a host that has already been prepared (see
    /// <see cref="HostPreparer"/>): catalog, VMM launcher, sandbox manager and the hosted
    /// service that migrates and recovers on start and stops VMs on shutdown.
    /// </summary>
    public static IServiceCollection AddBoughEngine(this IServiceCollection services, EngineOptions options, PreparedHost host)
    {
        services.AddSingleton(options);
        services.AddSingleton(host);
        services.AddSingleton(sp => new CatalogDb(options.CatalogPath, sp.GetService<ILogger<CatalogDb>>()));
        services.AddSingleton(sp => new SandboxStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new SnapshotStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new VmLauncher(sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<SandboxManager>();
        services.AddSingleton<ISandboxService>(sp => sp.GetRequiredService<SandboxManager>());
        services.AddSingleton<ISnapshotService>(sp => sp.GetRequiredService<SandboxManager>());
        services.AddHostedService<EngineHostedService>();
        // Stopping VMs on shutdown must not be cut short by the default 30 s host timeout.
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(90));
        return services;
    }
}
