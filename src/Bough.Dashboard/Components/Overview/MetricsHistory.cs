using Bough.Engine.Metrics;

namespace Bough.Dashboard.Components.Overview;

/// <summary>
/// The overview's short memory of each sandbox's usage: the engine keeps no series (each sample is fresh), so the
/// page keeps the last <see cref="Capacity"/> samples per sandbox while it is open, for its sparklines.
/// Values are percentages: CPU of all vCPUs, resident memory of the guest's memory size.
/// </summary>
public sealed class MetricsHistory
{
    /// <summary>About two minutes at one sample every two seconds.</summary>
    public const int Capacity = 60;

    private readonly Dictionary<string, Series> _series = new(StringComparer.Ordinal);

    /// <summary>One sandbox's samples, oldest first (a null value: it was not running then).</summary>
    public sealed class Series
    {
        internal Queue<double?> CpuQueue { get; } = new();
        internal Queue<double?> MemoryQueue { get; } = new();

        public IEnumerable<double?> Cpu => CpuQueue;
        public IEnumerable<double?> Memory => MemoryQueue;

        /// <summary>The latest CPU percentage, if it ran at the last sample.</summary>
        public double? LastCpu { get; internal set; }

        /// <summary>The latest resident bytes, if it ran at the last sample.</summary>
        public long? LastResidentBytes { get; internal set; }
    }

    /// <summary>Adds one round of samples; sandboxes absent from it are forgotten (deleted).</summary>
    public void Add(IReadOnlyList<SandboxUsage> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in samples)
        {
            seen.Add(s.Id);
            if (!_series.TryGetValue(s.Id, out var series))
                _series[s.Id] = series = new Series();
            double? memory = s.MemoryResidentBytes is { } rss && s.MemoryLimitBytes > 0
                ? Math.Clamp(rss * 100.0 / s.MemoryLimitBytes, 0, 100)
                : null;
            Push(series.CpuQueue, s.CpuPercent);
            Push(series.MemoryQueue, memory);
            series.LastCpu = s.CpuPercent;
            series.LastResidentBytes = s.MemoryResidentBytes;
        }
        foreach (var gone in _series.Keys.Where(id => !seen.Contains(id)).ToList())
            _series.Remove(gone);
    }

    /// <summary>The samples of <paramref name="id"/>, or null before its first.</summary>
    public Series? For(string id) => _series.GetValueOrDefault(id);

    private static void Push(Queue<double?> queue, double? value)
    {
        queue.Enqueue(value);
        while (queue.Count > Capacity)
            queue.Dequeue();
    }
}
