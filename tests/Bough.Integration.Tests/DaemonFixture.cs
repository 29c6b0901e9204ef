using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// One daemon (and one long-lived sandbox) shared by the tests of the "daemon" collection,
/// because a TCG boot costs seconds and most tests only need somewhere to run commands.
/// Tests that need their own daemon (restart, crash) start one themselves.
/// </summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    public DaemonProcess Daemon { get; private set; } = null!;
    public Sandbox Primary { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Daemon = await DaemonProcess.StartAsync(TestEnvironment.NewDataDir());
        Primary = await Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest
        {
            Env = new() { ["SANDBOX_LEVEL"] = "from-create" },
            Metadata = new() { ["suite"] = "integration" },
        });
    }

    public async Task DisposeAsync()
    {
        var dir = Daemon.DataDir;
        await Daemon.DisposeAsync();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition("daemon")]
public sealed class DaemonCollectionDefinition : ICollectionFixture<DaemonFixture>;
