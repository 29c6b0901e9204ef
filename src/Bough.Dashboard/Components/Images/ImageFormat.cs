using System.Globalization;
using Bough.Contracts;

namespace Bough.Dashboard.Components.Images;

/// <summary>How the images page words sizes, times, digests and commands: short, in one place.</summary>
internal static class ImageFormat
{
    /// <summary>Bytes in the largest unit that keeps a number ≥ 1 (1.5 MiB), or a dash when unknown.</summary>
    public static string Bytes(long? bytes)
    {
        if (bytes is not { } b) return "–";
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = b;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{b} B")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.#} {units[unit]}");
    }

    /// <summary>When, in UTC to the second (the daemon's clock, not the browser's).</summary>
    public static string Time(DateTimeOffset? at) =>
        at is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) : "–";

    /// <summary>The first 12 hex digits of a digest, as registries show them.</summary>
    public static string ShortDigest(string? digest)
    {
        if (string.IsNullOrEmpty(digest)) return "–";
        var hex = digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>A layer's completion in percent (0 when its size is unknown, 100 once done or cached).</summary>
    public static int Percent(LayerStatus layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (layer.State is "done" or "cached") return 100;
        if (layer.Size <= 0) return 0;
        return (int)Math.Clamp(layer.Done * 100 / layer.Size, 0, 100);
    }

    /// <summary>An argv as one line; words with spaces or quotes are single-quoted, so it reads as the shell would take it.</summary>
    public static string Command(IReadOnlyList<string>? argv)
    {
        if (argv is not { Count: > 0 }) return "–";
        return string.Join(' ', argv.Select(a =>
            a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=@,+%".Contains(c, StringComparison.Ordinal))
                ? a
                : "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
    }
}
