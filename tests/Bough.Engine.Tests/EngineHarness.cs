using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Capture;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Network;
using Bough.Engine.Recovery;
using Bough.Engine.Setup;
using Bough.Engine.Snapshots;
using Bough.Engine.Tests.Fakes;
using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Publish;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;

namespace Bough.Engine.Tests;

/// <summary>
/// The real engine, composed by <see cref="EngineServiceCollectionExtensions.AddBoughEngine"/>
/// over a real SQLite catalog in a temp directory, with fakes only at the seams where a VM
/// would be needed (launcher, agent, capturer, boot images) and a fake clock. One per test;
/// disposing it lets every parked fake call go and removes the directory.
/// </summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    /// <summary>How long a test waits for something the engine should do promptly before calling it a hang.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private readonly ServiceProvider _services;
    private readonly CatalogDb _catalog;

    private EngineHarness(string root, EngineOptions options, ServiceProvider services, FakeVmLauncher launcher,
        FakeAgentConnector agents, FakeCapturer capturer, FakeBootImages images, FakeTimeProvider time)
    {
        Root = root;
        Options = options;
        _services = services;
        _catalog = services.GetRequiredService<CatalogDb>();
        Launcher = launcher;
        Agents = agents;
        Capturer = capturer;
        Images = images;
        Time = time;
    }

    public string Root { get; }
    public EngineOptions Options { get; }
    public FakeVmLauncher Launcher { get; }
    public FakeAgentConnector Agents { get; }
    public FakeCapturer Capturer { get; }
    public FakeBootImages Images { get; }
    public FakeTimeProvider Time { get; }

    public ISandboxService Sandboxes => Get<ISandboxService>();
    public IBranchingService Branching => Get<IBranchingService>();
    public ISnapshotService Snapshots => Get<ISnapshotService>();
    public SandboxStore SandboxRows => Get<SandboxStore>();
    public SnapshotStore SnapshotRows => Get<SnapshotStore>();
    public TemplateStore TemplateRows => Get<TemplateStore>();
    public SandboxRegistry Registry => Get<SandboxRegistry>();
    public CaptureSlots CaptureSlots => Get<CaptureSlots>();
    public SnapshotLeases SnapshotLeases => Get<SnapshotLeases>();
    public SnapshotGc SnapshotGc => Get<SnapshotGc>();
    public StartupRecovery Recovery => Get<StartupRecovery>();
    public ShutdownCoordinator Shutdown => Get<ShutdownCoordinator>();
    public EngineLifetime Lifetime => Get<EngineLifetime>();
    public GuestChannel Channel => Get<GuestChannel>();
    public ISandboxPolicies Policies => Get<ISandboxPolicies>();
    public Engine.Sandboxes.DeadlineEnforcer Deadlines => Get<Engine.Sandboxes.DeadlineEnforcer>();
    public Admission Admission => Get<Admission>();

    /// <param name="root">
    /// Another harness's <see cref="Root"/> (after its <see cref="CrashAsync"/>): a second daemon over
    /// the same data directory and catalog, as after a restart.
    /// </param>
    /// <param name="services">Registers more seams (an <see cref="Network.IEgressFirewall"/>) before the engine.</param>
    public static async Task<EngineHarness> StartAsync(Action<EngineOptions>? configure = null, string? root = null,
        Action<IServiceCollection>? services = null)
    {
        root ??= Path.Combine(Path.GetTempPath(), "bough-etests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var baseDisk = Path.Combine(root, "images", "base.qcow2");
        Directory.CreateDirectory(Path.GetDirectoryName(baseDisk)!);
        await File.WriteAllBytesAsync(baseDisk, []);

        // Boot snapshots are off unless a test turns them on (BootSnapshotTests): the other tests count boots and
        // park the n-th capture, and the first create's boot-snapshot capture would shift both.
        var options = new EngineOptions { DataDir = Path.Combine(root, "data"), BusyWait = TimeSpan.FromSeconds(5), BootSnapshots = false };
        options.Jail.RangeLockDir = Path.Combine(root, "run"); // fake VMs: no host-wide uid range to claim
        configure?.Invoke(options);
        var host = new PreparedHost(
            new GuestKernel("/nonexistent/vmlinuz", "/nonexistent/initrd", "fake", "console=ttyS0"),
            new BaseImage(FakeBootImages.Base, baseDisk, "fake-hash", DateTimeOffset.UnixEpoch),
            new AccelDecision("tcg", "test"), "/nonexistent/agent");

        var launcher = new FakeVmLauncher();
        var agents = new FakeAgentConnector();
        var capturer = new FakeCapturer();
        var images = new FakeBootImages(baseDisk);
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));

        var collection = new ServiceCollection();
        services?.Invoke(collection);
        collection.AddLogging();
        // The seams, registered before AddBoughEngine so its TryAdds keep these.
        collection.AddSingleton<TimeProvider>(time);
        collection.AddSingleton<IVmLauncher>(launcher);
        collection.AddSingleton<IAgentConnector>(agents);
        collection.AddSingleton<ISnapshotCapturer>(capturer);
        collection.AddSingleton<IBootImages>(images);
        collection.TryAddSingleton<IEgressFirewall>(new FakeEgressFirewall());
        collection.AddBoughEngine(options, host);
        var provider = collection.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false, ValidateScopes = true });

        Directory.CreateDirectory(options.DataDir);
        await provider.GetRequiredService<CatalogDb>().MigrateAsync(CancellationToken.None);
        Directory.CreateDirectory(options.SandboxesDir);
        return new EngineHarness(root, options, provider, launcher, agents, capturer, images, time);
    }

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    /// <summary>Creates a running sandbox from "base" (cold boot through the fake launcher).</summary>
    public Task<Sandbox> CreateAsync(Dictionary<string, string>? env = null, Dictionary<string, string>? metadata = null) =>
        Sandboxes.CreateAsync(new CreateSandboxRequest { Env = env, Metadata = metadata, Ports = [8080] }, CancellationToken.None);

    public Task<SandboxRecord?> RowAsync(string id) => SandboxRows.GetAsync(id, CancellationToken.None);

    public async Task<IReadOnlyList<SandboxRecord>> RowsAsync() => await SandboxRows.ListAsync(CancellationToken.None);

    public Task<SnapshotRecord?> SnapshotRowAsync(string id) => SnapshotRows.GetAsync(id, CancellationToken.None);

    public SandboxRuntime Runtime(string id) => Registry.Get(id) ?? throw new InvalidOperationException($"no runtime for {id}");

    /// <summary>The VM the fake launcher gave <paramref name="sandboxId"/> last.</summary>
    public FakeVm VmOf(string sandboxId) => Launcher.Vms.Last(v => v.Spec.Name == sandboxId);

    /// <summary>Ends this engine as a killed daemon would end: nothing is stopped or cleaned, the data directory stays.</summary>
    public async Task CrashAsync()
    {
        Launcher.ReleaseAll();
        Agents.Connect.ReleaseAll();
        Capturer.Capture.ReleaseAll();
        await _services.DisposeAsync();
        // This engine's pool only: ClearAllPools would also clear the pools of the test classes running beside this
        // one, and the provider's pool clearing races with connections those return ("Collection was modified").
        _catalog.ClearPool();
    }

    public async ValueTask DisposeAsync()
    {
        await CrashAsync();
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { /* a background task of a failed test still writing; the OS temp cleaner gets it */ }
    }
}

/// <summary>Bounded waits: a race that hangs must fail the test, not the whole run.</summary>
internal static class TestWaits
{
    public static Task Within(this Task task) => task.WaitAsync(EngineHarness.Patience);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(EngineHarness.Patience);
}
