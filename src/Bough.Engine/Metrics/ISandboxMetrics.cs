namespace Bough.Engine.Metrics;

/// <summary>
/// What sandboxes use now, measured from the host (<see cref="SandboxMetricsSampler"/>): the Bough API's
/// <c>/v1/sandboxes/{id}/metrics</c>, the Prometheus <c>/metrics</c> and E2B's <c>getMetrics</c> all read it.
/// </summary>
public interface ISandboxMetrics
{
    /// <summary>One sample of one sandbox; CPU and memory only while it runs (else null).</summary>
    /// <exception cref="BoughException"><c>sandbox_not_found</c>.</exception>
    Task<SandboxUsage> SampleAsync(string id, CancellationToken ct);

    /// <summary>One sample of every sandbox, over one shared CPU window.</summary>
    Task<IReadOnlyList<SandboxUsage>> SampleAllAsync(CancellationToken ct);

    /// <summary>Guest memory the daemon has promised to sandboxes, and how much it may promise in all.</summary>
    HostMemoryUsage HostMemory();
}

/// <summary>
/// One sample of a sandbox. <see cref="CpuPercent"/> is of its vCPUs together (100 = all busy), over a short
/// window; <see cref="MemoryResidentBytes"/> is the QEMU process's resident set (guest pages touched, plus
/// QEMU's own); <see cref="DiskUsedBytes"/> is what its overlay files take. CPU and memory are null unless
/// it runs.
/// </summary>
public sealed record SandboxUsage(
    string Id,
    string State,
    DateTimeOffset SampledAt,
    int Vcpus,
    double? CpuPercent,
    long? MemoryResidentBytes,
    long MemoryLimitBytes,
    long DiskUsedBytes);

/// <summary>Guest memory reserved by admission for live sandboxes, and the ceiling admission enforces.</summary>
public sealed record HostMemoryUsage(int Sandboxes, long CommittedBytes, long LimitBytes);
