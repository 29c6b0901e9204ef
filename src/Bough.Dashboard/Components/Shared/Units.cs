using System.Globalization;

namespace Bough.Dashboard.Components.Shared;

/// <summary>
/// How every page of the dashboard writes sizes, durations and times, so that they all say "1.5 GiB", "3m 20s"
/// and "2026-11-28 15:04:38 UTC" the same way (binary units: guest memory is sized in MiB).
/// </summary>
internal static class Units
{
    private static readonly string[] ByteUnits = ["B", "KiB", "MiB", "GiB", "TiB"];

    /// <summary>A byte count in the largest binary unit that keeps it at or above 1 ("512 MiB", "1.5 GiB").</summary>
    public static string Bytes(long bytes)
    {
        double value = Math.Max(0, bytes);
        var unit = 0;
        while (value >= 1024 && unit < ByteUnits.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        var format = unit == 0 || value >= 100 ? "0" : "0.#";
        return value.ToString(format, CultureInfo.InvariantCulture) + " " + ByteUnits[unit];
    }

    /// <summary>A span as its two largest parts ("2d 3h", "4m 05s", "12s"); negative spans count as zero.</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero)
            span = TimeSpan.Zero;
        if (span.TotalDays >= 1)
            return string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalDays}d {span.Hours}h");
        if (span.TotalHours >= 1)
            return string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h {span.Minutes:00}m");
        if (span.TotalMinutes >= 1)
            return string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes}m {span.Seconds:00}s");
        return string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalSeconds}s");
    }

    /// <summary>A point in time in UTC to the second (the daemon's clock, not the browser's).</summary>
    public static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>A stop window in milliseconds ("85 ms", "1.2 s").</summary>
    public static string Millis(long ms) => ms < 1000
        ? string.Create(CultureInfo.InvariantCulture, $"{ms} ms")
        : string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:0.#} s");

    /// <summary>A share as a whole percentage for widths and labels, clamped to 0–100.</summary>
    public static string Percent(double part, double whole) => whole <= 0
        ? "0"
        : Math.Clamp(part / whole * 100, 0, 100).ToString("0.#", CultureInfo.InvariantCulture);
}
