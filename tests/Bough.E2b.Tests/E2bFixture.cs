using System.Text.Json;
using Bough.Integration.Tests;

namespace Bough.E2b.Tests;

/// <summary>
/// One daemon, the pinned SDK, and one long-lived E2B sandbox (from the <c>base</c> template, which
/// the first create makes: debootstrap plus a template capture, so minutes) that most tests share,
/// because every VM costs seconds under TCG.
/// </summary>
public sealed class E2bFixture : IAsyncLifetime
{
    public DaemonProcess Daemon { get; private set; } = null!;
    public NodeSdk Sdk { get; private set; } = null!;

    /// <summary>Made with metadata <c>suite=e2b</c> and envs <c>FOO=from-create</c>.</summary>
    public string Shared { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var install = NodeSdk.InstallAsync();
        Daemon = await DaemonProcess.StartAsync(TestEnvironment.NewDataDir());
        await install;
        Sdk = new NodeSdk(Daemon.Url, Daemon.Token);
        Shared = await CreateAsync(new { metadata = new { suite = "e2b", role = "shared" }, envs = new { FOO = "from-create" } });
    }

    public async Task<string> CreateAsync(object args) =>
        (await Sdk.RunAsync("create", args)).GetProperty("sandboxId").GetString()!;

    public async Task DisposeAsync()
    {
        var dir = Daemon.DataDir;
        await Daemon.DisposeAsync();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    public static string Str(JsonElement e, string name) => e.GetProperty(name).GetString() ?? "";
}

[CollectionDefinition("e2b")]
public sealed class E2bCollectionDefinition : ICollectionFixture<E2bFixture>;
