using Bough.Catalog;
using Bough.Engine.Images;
using Bough.Engine.Sandboxes;
using Bough.Engine.Templates;
using Microsoft.Extensions.Hosting;

namespace Bough.Engine;

/// <summary>
/// Brings the engine up before the HTTP server listens (catalog migrations, adoption of
/// surviving VMs) and takes it down after the server has drained.
/// </summary>
internal sealed class EngineHostedService(CatalogDb catalog, SandboxManager manager, ImageService images,
    TemplateService templates) : IHostedLifecycleService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await catalog.MigrateAsync(ct);
        await images.RecoverAsync(ct);
        await manager.RecoverAsync(ct);
        await templates.RecoverAsync(ct);
    }

    /// <summary>Runs before the web server drains its requests: in-flight creates and execs end now.</summary>
    public Task StoppingAsync(CancellationToken ct)
    {
        manager.BeginShutdown();
        images.BeginShutdown();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => manager.ShutdownAsync();

    public Task StartingAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken ct) => Task.CompletedTask;
}
