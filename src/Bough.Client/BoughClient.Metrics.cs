namespace Bough.Client;

/// <summary>
/// One sample of a sandbox's use, as <c>GET /v1/sandboxes/{id}/metrics</c> answers it (the daemon's
/// <c>Bough.Engine.Metrics.SandboxUsage</c>). CPU and memory are null unless the sandbox runs.
/// </summary>
public sealed record SandboxStats(
    string Id,
    string State,
    DateTimeOffset SampledAt,
    int Vcpus,
    double? CpuPercent,
    long? MemoryResidentBytes,
    long MemoryLimitBytes,
    long DiskUsedBytes);

public sealed partial class BoughClient
{
    /// <summary>Takes one sample (CPU % over 250 ms, resident memory, disk) of a sandbox, measured on the daemon's host.</summary>
    public Task<SandboxStats> GetSandboxStatsAsync(string id, CancellationToken ct = default) =>
        GetJsonAsync<SandboxStats>(SandboxPath(id) + "/metrics", ct);

    /// <summary>The daemon's Prometheus exposition (<c>GET /metrics</c>), as text.</summary>
    public async Task<string> GetPrometheusMetricsAsync(CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Url("metrics"));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        return await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
    }
}
