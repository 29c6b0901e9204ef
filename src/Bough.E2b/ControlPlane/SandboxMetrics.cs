using System.Globalization;
using Bough.Contracts;
using Bough.Engine;

namespace Bough.E2b.ControlPlane;

/// <summary>
/// Real figures for one sandbox, measured from the host: CPU from the QEMU process's
/// <c>/proc/PID/stat</c> over a short window, memory as its resident set (the guest pages it has
/// touched), disk as the space its overlay files take. One sample per call (E2B keeps a series;
/// Bough keeps none yet).
/// </summary>
internal sealed class SandboxMetrics(ISandboxService sandboxes, TimeProvider clock)
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(250);

    public async Task<E2bMetric> SampleAsync(Sandbox sandbox, CancellationToken ct)
    {
        var pid = sandbox.Pid ?? throw new E2bException(409, $"sandbox {sandbox.Id} has no running VM");
        var ticksBefore = CpuTicks(pid);
        var started = clock.GetTimestamp();
        await Task.Delay(Window, ct);
        var ticksAfter = CpuTicks(pid);
        var seconds = clock.GetElapsedTime(started).TotalSeconds;
        // USER_HZ is 100 on every Linux this runs on.
        var busy = (ticksAfter - ticksBefore) / 100.0;
        var pct = seconds > 0 ? Math.Clamp(busy / seconds / Math.Max(1, sandbox.Vcpus) * 100, 0, 100) : 0;
        var dir = Path.Combine(sandboxes.Info.DataDir, "sandboxes", sandbox.Id);
        var now = clock.GetUtcNow();
        return new E2bMetric
        {
            Timestamp = now,
            TimestampUnix = now.ToUnixTimeSeconds(),
            CpuCount = sandbox.Vcpus,
            CpuUsedPct = Math.Round(pct, 2),
            MemUsed = Math.Min(ResidentBytes(pid), sandbox.MemoryMiB * 1024L * 1024),
            MemTotal = sandbox.MemoryMiB * 1024L * 1024,
            DiskUsed = Directory.Exists(dir)
                ? Directory.EnumerateFiles(dir, "disk*.qcow2").Sum(f => new FileInfo(f).Length) : 0,
            DiskTotal = 0,
        };
    }

    /// <summary>utime + stime of the process (fields 14 and 15, counted after the parenthesised name).</summary>
    private static long CpuTicks(int pid)
    {
        var stat = ReadProc($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static long ResidentBytes(int pid)
    {
        foreach (var line in ReadProc($"/proc/{pid}/status").Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        return 0;
    }

    private static string ReadProc(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new E2bException(409, "the sandbox's VM is gone", ex);
        }
    }
}
