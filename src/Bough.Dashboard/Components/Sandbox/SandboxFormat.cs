using System.Globalization;

namespace Bough.Dashboard.Components.SandboxView;

/// <summary>How the sandbox page writes times, durations and sizes: short, invariant, the same in every panel.</summary>
internal static class SandboxFormat
{
    /// <summary>A point in time in UTC, to the second.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>How long ago <paramref name="t"/> was.</summary>
    public static string Age(DateTimeOffset t) => Span(DateTimeOffset.UtcNow - t);

    /// <summary>How long until <paramref name="t"/> (0s once past).</summary>
    public static string Left(DateTimeOffset t) => Span(t - DateTimeOffset.UtcNow);

    /// <summary>A duration as its two largest units ("3h 12m", "45s").</summary>
    public static string Span(TimeSpan d)
    {
        if (d < TimeSpan.Zero)
            d = TimeSpan.Zero;
        return d.TotalDays >= 1 ? $"{(int)d.TotalDays}d {d.Hours}h"
            : d.TotalHours >= 1 ? $"{(int)d.TotalHours}h {d.Minutes}m"
            : d.TotalMinutes >= 1 ? $"{(int)d.TotalMinutes}m {d.Seconds}s"
            : $"{(int)d.TotalSeconds}s";
    }

    /// <summary>A byte count in binary units ("1.5 KiB").</summary>
    public static string Bytes(long n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = n;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{n} B" : string.Create(CultureInfo.InvariantCulture, $"{v:0.#} {units[u]}");
    }
}
