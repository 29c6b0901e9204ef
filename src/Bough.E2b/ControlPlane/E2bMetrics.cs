using Bough.Engine.Metrics;

namespace Bough.E2b.ControlPlane;

/// <summary>
/// E2B's metric entry from the engine's sample (<see cref="ISandboxMetrics"/>, shared with Bough's own
/// metrics). E2B keeps a series; Bough answers with the one sample it takes per call.
/// </summary>
internal static class E2bMetrics
{
    /// <summary>Null when the sample has no CPU or memory (the VM stopped between the state check and the sample).</summary>
    public static E2bMetric? From(SandboxUsage u) => u is { CpuPercent: { } cpu, MemoryResidentBytes: { } resident }
        ? new E2bMetric
        {
            Timestamp = u.SampledAt,
            TimestampUnix = u.SampledAt.ToUnixTimeSeconds(),
            CpuCount = u.Vcpus,
            CpuUsedPct = cpu,
            // QEMU's own pages count in its resident set; E2B's figure is the guest's, which cannot exceed its size.
            MemUsed = Math.Min(resident, u.MemoryLimitBytes),
            MemTotal = u.MemoryLimitBytes,
            DiskUsed = u.DiskUsedBytes,
            DiskTotal = 0,
        }
        : null;
}
