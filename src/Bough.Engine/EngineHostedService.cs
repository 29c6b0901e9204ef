using Bough.Catalog;
using Bough.Engine.Sandboxes;
using Microsoft.Extensions.Hosting;

namespace Bough.Engine;

/// <summary>
/// Brings the engine up before the HTTP server listens (catalog migrations, adoption of
/// surviving VMs) and takes it down after the server has drained.
/// </summary>
internal sealed class EngineHostedService(CatalogDb catalog, SandboxManager manager) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await catalog.MigrateAsync(ct);
        await manager.RecoverAsync(ct);
    }

    public Task StopAsync(CancellationToken ct) => manager.ShutdownAsync(ct);
}
