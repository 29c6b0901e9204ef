using Bough.Catalog;
using Bough.Engine.Images;
using Bough.Engine.Recovery;
using Bough.Engine.Templates;
using Microsoft.Extensions.Hosting;

namespace Bough.Engine;

/// <summary>
/// Brings the engine up before the HTTP server listens (catalog migrations, adoption of
/// surviving VMs) and takes it down after the server has drained.
/// </summary>
internal sealed class EngineHostedService(EngineOptions options, CatalogDb catalog, StartupRecovery recovery,
    ShutdownCoordinator shutdown, ImageService images, TemplateService templates) : IHostedLifecycleService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The import directory exists from the start (private: archives may hold anything).
        if (!OperatingSystem.IsWindows())
            Directory.CreateDirectory(options.ImportDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await catalog.MigrateAsync(cancellationToken);
        await images.RecoverAsync(cancellationToken);
        await recovery.RecoverAsync(cancellationToken);
        await templates.RecoverAsync(cancellationToken);
    }

    /// <summary>Runs before the web server drains its requests: in-flight lifecycle operations and execs end now.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        shutdown.BeginShutdown();
        images.BeginShutdown();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => shutdown.ShutdownAsync();

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
