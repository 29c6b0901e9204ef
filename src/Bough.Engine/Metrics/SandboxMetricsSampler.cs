using System.Globalization;
using Bough.Contracts;
using Bough.Engine.Lifecycle;

namespace Bough.Engine.Metrics;

/// <summary>
/// Measures sandboxes from the host, without asking the guest (which may be busy, hostile or paused): CPU from
/// the QEMU process's <c>/proc/PID/stat</c> over a short window, memory as its resident set
/// (<c>/proc/PID/status</c> VmRSS), disk as the size of the overlay files in its directory. Nothing is kept
/// between calls: each call is one fresh sample (a scraper keeps the series).
/// </summary>
internal sealed class SandboxMetricsSampler(ISandboxService sandboxes, EngineOptions options, Admission admission, TimeProvider clock)
    : ISandboxMetrics
{
    /// <summary>Long enough to see a busy vCPU's ticks (USER_HZ 100 = 10 ms each), short enough for a request.</summary>
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(250);

    /// <summary>USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux this runs on.</summary>
    private const double TicksPerSecond = 100;

    public async Task<SandboxUsage> SampleAsync(string id, CancellationToken ct) =>
        (await SampleAsync([await sandboxes.GetAsync(id, ct)], ct))[0];

    public async Task<IReadOnlyList<SandboxUsage>> SampleAllAsync(CancellationToken ct) =>
        await SampleAsync(await sandboxes.ListAsync(ct), ct);

    public HostMemoryUsage HostMemory()
    {
        var (count, mib) = admission.Committed();
        return new HostMemoryUsage(count, mib * 1024 * 1024, admission.MemoryLimitMiB * 1024 * 1024);
    }

    private async Task<IReadOnlyList<SandboxUsage>> SampleAsync(IReadOnlyList<Sandbox> list, CancellationToken ct)
    {
        var running = list.Where(s => s.State == SandboxStates.Running && s.Pid is not null).ToList();
        var before = running.ToDictionary(s => s.Id, s => CpuTicks(s.Pid!.Value));
        var started = clock.GetTimestamp();
        if (running.Count > 0) await Task.Delay(Window, clock, ct);
        var seconds = clock.GetElapsedTime(started).TotalSeconds;
        var now = clock.GetUtcNow();
        return list.Select(s =>
        {
            double? cpu = null;
            long? resident = null;
            if (before.TryGetValue(s.Id, out var ticksBefore) && ticksBefore is { } t0 && CpuTicks(s.Pid!.Value) is { } t1)
            {
                var busy = (t1 - t0) / TicksPerSecond;
                cpu = seconds > 0 ? Math.Round(Math.Clamp(busy / seconds / Math.Max(1, s.Vcpus) * 100, 0, 100), 2) : 0;
                resident = ResidentBytes(s.Pid.Value);
            }
            return new SandboxUsage(s.Id, s.State, now, s.Vcpus, cpu, resident, s.MemoryMiB * 1024L * 1024, DiskUsed(s.Id));
        }).ToList();
    }

    private long DiskUsed(string id)
    {
        var dir = Path.Combine(options.SandboxesDir, id);
        try
        {
            return Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "disk*.qcow2").Sum(f => new FileInfo(f).Length) : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0; // deleted under us
        }
    }

    /// <summary>utime + stime (fields 14 and 15, counted after the parenthesised name, which may hold spaces); null when the process is gone.</summary>
    private static long? CpuTicks(int pid)
    {
        if (ReadProc($"/proc/{pid}/stat") is not { } stat) return null;
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static long? ResidentBytes(int pid)
    {
        if (ReadProc($"/proc/{pid}/status") is not { } status) return null;
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        return null;
    }

    private static string? ReadProc(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // the VM exited between listing and reading
        }
    }
}
