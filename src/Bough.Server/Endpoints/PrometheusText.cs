using System.Globalization;
using System.Text;
using Bough.Contracts;
using Bough.Engine.Metrics;

namespace Bough.Server.Endpoints;

/// <summary>
/// Renders samples in the Prometheus text exposition format (0.0.4): one <c># HELP</c> and <c># TYPE</c> per
/// family, then its samples. Every family is a gauge: each scrape is a fresh measurement, not a counter.
/// </summary>
internal static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>States reported even at zero, so a dashboard's series do not come and go.</summary>
    private static readonly string[] States =
        [SandboxStates.Starting, SandboxStates.Running, SandboxStates.Paused, SandboxStates.Stopping, SandboxStates.Stopped, SandboxStates.Dead];

    public static string Render(IReadOnlyList<SandboxUsage> sandboxes, HostMemoryUsage host)
    {
        var sb = new StringBuilder();
        Family(sb, "bough_sandboxes", "Sandboxes by state.");
        foreach (var state in States.Union(sandboxes.Select(s => s.State)))
            Sample(sb, "bough_sandboxes", $"state=\"{Escape(state)}\"", sandboxes.Count(s => s.State == state));

        PerSandbox(sb, sandboxes, "bough_sandbox_cpu_percent", "CPU use of the sandbox's vCPUs together (100 = all busy), running sandboxes only.",
            s => s.CpuPercent);
        PerSandbox(sb, sandboxes, "bough_sandbox_memory_resident_bytes", "Resident memory of the sandbox's QEMU process, running sandboxes only.",
            s => s.MemoryResidentBytes);
        PerSandbox(sb, sandboxes, "bough_sandbox_memory_limit_bytes", "Guest memory the sandbox was given.", s => s.MemoryLimitBytes);
        PerSandbox(sb, sandboxes, "bough_sandbox_disk_used_bytes", "Size of the sandbox's disk overlay files.", s => s.DiskUsedBytes);
        PerSandbox(sb, sandboxes, "bough_sandbox_vcpus", "vCPUs the sandbox was given.", s => s.Vcpus);

        Family(sb, "bough_host_memory_committed_bytes", "Guest memory reserved for live sandboxes (admission).");
        Sample(sb, "bough_host_memory_committed_bytes", null, host.CommittedBytes);
        Family(sb, "bough_host_memory_limit_bytes", "Guest memory admission lets sandboxes reserve in all.");
        Sample(sb, "bough_host_memory_limit_bytes", null, host.LimitBytes);
        return sb.ToString();
    }

    private static void PerSandbox(StringBuilder sb, IReadOnlyList<SandboxUsage> sandboxes, string name, string help, Func<SandboxUsage, double?> value)
    {
        Family(sb, name, help);
        foreach (var s in sandboxes)
        {
            if (value(s) is { } v)
                Sample(sb, name, $"sandbox=\"{Escape(s.Id)}\",state=\"{Escape(s.State)}\"", v);
        }
    }

    private static void Family(StringBuilder sb, string name, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(" gauge\n");

    private static void Sample(StringBuilder sb, string name, string? labels, double value)
    {
        sb.Append(name);
        if (labels is not null) sb.Append('{').Append(labels).Append('}');
        sb.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>Label values escape backslash, double quote and newline.</summary>
    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
             .Replace("\n", "\\n", StringComparison.Ordinal);
}
