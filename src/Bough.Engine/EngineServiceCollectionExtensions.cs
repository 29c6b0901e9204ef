using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.BootSnapshots;
using Bough.Engine.Capture;
using Bough.Engine.Events;
using Bough.Engine.Guest;
using Bough.Engine.Images;
using Bough.Engine.Lifecycle;
using Bough.Engine.Metrics;
using Bough.Engine.Recovery;
using Bough.Engine.Sandboxes;
using Bough.Engine.Setup;
using Bough.Engine.Snapshots;
using Bough.Engine.Templates;
using Bough.Engine.Network;
using Bough.HostSetup;
using Bough.Network;
using Bough.Images;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.Vmm;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bough.Engine;

/// <summary>The engine's composition root: every engine type is wired here and nowhere else.</summary>
public static class EngineServiceCollectionExtensions
{
    /// <summary>
    /// Registers the engine for a host that has already been prepared (see <see cref="HostPreparer"/>):
    /// catalog, images, the sandbox lifecycle, branching, templates, and the hosted service that
    /// migrates and recovers on start and stops VMs on shutdown. The seams to the outside world
    /// (<see cref="IVmLauncher"/>, <see cref="IAgentConnector"/>, <see cref="ISnapshotCapturer"/>,
    /// <see cref="IBootImages"/>, <see cref="IEgressFirewall"/>, <see cref="TimeProvider"/>) are registered with TryAdd, so a
    /// caller (the engine tests) may register its own first.
    /// </summary>
    public static IServiceCollection AddBoughEngine(this IServiceCollection services, EngineOptions options, PreparedHost host)
    {
        options.Validate();
        services.AddSingleton(options);
        services.AddSingleton(options.Jail);
        services.AddSingleton(host);

        // Catalog
        services.AddSingleton(sp => new CatalogDb(options.CatalogPath, sp.GetService<ILogger<CatalogDb>>()));
        services.AddSingleton(sp => new SandboxStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new SnapshotStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new ImageStore(sp.GetRequiredService<CatalogDb>()));
        services.AddSingleton(sp => new TemplateStore(sp.GetRequiredService<CatalogDb>()));

        // Images: one set of caps for every document, layer and image the pipeline touches, and
        // imports only from the configured directory.
        var limits = options.ImageLimits;
        limits.Validate();
        services.AddSingleton(limits);
        services.AddSingleton(_ => new ImportDirectory(options.ImportDir));
        services.AddSingleton(_ => new BlobStore(options.DataDir));
        services.AddSingleton(_ => new GuestImageBuilder(options.DataDir, host.AgentPath, HostRequirements.BusyboxPath, limits));
        // The credentials file is read per pull, so one added (or fixed) later needs no restart.
        services.AddSingleton(sp => new OciPuller(sp.GetRequiredService<BlobStore>(),
            new RegistryOptions { CredentialsFile = options.RegistryCredentialsPath, Limits = limits }));
        services.AddSingleton(sp => new OciArchiveImporter(sp.GetRequiredService<BlobStore>(), limits));
        services.AddSingleton<ImageService>();
        services.AddSingleton<IImageService>(sp => sp.GetRequiredService<ImageService>());

        // Seams to the world (tests replace these)
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IBootImages>(sp => new ImageServiceBootImages(
            sp.GetRequiredService<ImageService>(), sp.GetRequiredService<ImageStore>(), host));
        services.TryAddSingleton<IVmLauncher>(sp => new QemuVmLauncher(
            new VmLauncher(sp.GetRequiredService<ILoggerFactory>()), sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton<IAgentConnector, AgentConnector>();
        services.TryAddSingleton<ISnapshotCapturer, QemuSnapshotCapturer>();
        // The host firewall over the same uid range VMs are given.
        services.TryAddSingleton<IEgressFirewall>(sp => new NftablesEgressFirewall(new NftablesFirewall(
            new NftablesFirewallOptions { TableName = options.Jail.FirewallTable, FirstVmUid = options.Jail.UidBase, VmUidCount = options.Jail.UidCount },
            sp.GetRequiredService<ILogger<NftablesFirewall>>())));

        // Lifecycle, boot, guest, capture, snapshots
        services.AddSingleton<EngineLifetime>();
        services.AddSingleton<EventBus>();
        services.AddSingleton<IEngineEvents>(sp => sp.GetRequiredService<EventBus>());
        services.AddSingleton<SandboxRegistry>();
        services.AddSingleton<CaptureSlots>();
        services.AddSingleton<VmSpecFactory>();
        services.AddSingleton<VmUids>();
        services.AddSingleton<GuestChannel>();
        services.AddSingleton<GuestIdentity>();
        services.AddSingleton<GuestOperations>();
        services.AddSingleton<IGuestProcesses, GuestProcesses>();
        services.AddSingleton<SandboxBooter>();
        services.AddSingleton<SnapshotLeases>();
        services.AddSingleton<SnapshotFilesystem>();
        services.AddSingleton<SnapshotGc>();
        services.AddSingleton<CaptureOrchestrator>();
        services.AddSingleton<ChildStarter>();
        services.AddSingleton<SandboxDeleter>();
        services.AddSingleton<BootShapes>();
        services.AddSingleton<BootSnapshotService>();

        // The services the API sees
        services.AddSingleton<SandboxService>();
        services.AddSingleton<ISandboxService>(sp => sp.GetRequiredService<SandboxService>());
        services.AddSingleton<SnapshotService>();
        services.AddSingleton<ISnapshotService>(sp => sp.GetRequiredService<SnapshotService>());
        services.AddSingleton<BranchService>();
        services.AddSingleton<IBranchingService>(sp => sp.GetRequiredService<BranchService>());
        services.AddSingleton<ITemplateForks>(sp => sp.GetRequiredService<BranchService>());
        services.AddSingleton<TemplateService>();
        services.AddSingleton<ITemplateService>(sp => sp.GetRequiredService<TemplateService>());
        services.AddSingleton<ISandboxMetrics, SandboxMetricsSampler>();

        // Start-up and shutdown
        services.AddSingleton<StartupRecovery>();
        services.AddSingleton<ShutdownCoordinator>();
        services.AddHostedService<EngineHostedService>();

        // Containment: admission, buffered-exec slots, lifetimes (deadlines and their enforcer,
        // started after EngineHostedService so recovery has run), egress policy changes.
        services.AddSingleton<Admission>();
        services.AddSingleton<ExecSlots>();
        services.AddSingleton<Deadlines>();
        services.AddSingleton<SandboxPolicyService>();
        services.AddSingleton<ISandboxPolicies>(sp => sp.GetRequiredService<SandboxPolicyService>());
        services.AddSingleton<DeadlineEnforcer>();
        services.AddHostedService(sp => sp.GetRequiredService<DeadlineEnforcer>());

        // Stopping VMs on shutdown must not be cut short by the default 30 s host timeout.
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(90));
        return services;
    }
}
