using Bough.Catalog;
using Bough.Engine.Images;
using Bough.Engine.Sandboxes;
using Bough.Engine.Templates;
using Bough.HostSetup;
using Bough.Images.Oci;
using Bough.Images.Rootfs;
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
    /// <see cref="HostPreparer"/>): catalog, VMM launcher, sandbox manager, images, templates and the hosted
    /// service that migrates and recovers on start and stops VMs on shutdown.
    /// </summary>
    public static IServiceCollection AddBoughEngine(this IServiceCollection services, EngineOptions options, PreparedHost host)
    {
        services.AddSingleton(options);
        services.AddSingleton(host);
        services.AddSingleton(sp => new CatalogDb(options.CatalogPath, sp.GetService<ILogger<CatalogDb>>()));
        services.AddSingleton(sp => new SandboxStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new SnapshotStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new ImageStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new TemplateStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(_ => new BlobStore(options.DataDir));
        services.AddSingleton(_ => new GuestImageBuilder(options.DataDir, host.AgentPath, HostRequirements.BusyboxPath));
        // The credentials file is read per pull, so one added (or fixed) later needs no restart.
        services.AddSingleton(sp => new OciPuller(sp.GetRequiredService<BlobStore>(),
            new RegistryOptions { CredentialsFile = options.RegistryCredentialsPath }));
        services.AddSingleton(sp => new OciArchiveImporter(sp.GetRequiredService<BlobStore>()));
        services.AddSingleton<ImageService>();
        services.AddSingleton<IImageService>(sp => sp.GetRequiredService<ImageService>());
        services.AddSingleton<TemplateService>();
        services.AddSingleton<ITemplateService>(sp => sp.GetRequiredService<TemplateService>());
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
