namespace Bough.Bench;

/// <summary>Median and spread, because a shared noisy machine makes single runs meaningless.</summary>
public static class Stats
{
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        var rank = p / 100.0 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    public static void Print(string what, IReadOnlyList<double> v) =>
        Console.WriteLine($"{what,-48} n={v.Count,-4} p50={Percentile(v, 50),9:F1}  p95={Percentile(v, 95),9:F1}  " +
                          $"min={v.Min(),9:F1}  max={v.Max(),9:F1}");
}

public static class Proc
{
    /// <summary>Proportional set size: shared pages count once across the processes sharing them.</summary>
    public static long PssKiB(int pid) => Field(pid, "Pss:");

    public static long RssKiB(int pid) => Field(pid, "Rss:");

    private static long Field(int pid, string name)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
            if (line.StartsWith(name, StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException($"no {name} in smaps_rollup");
    }
}
