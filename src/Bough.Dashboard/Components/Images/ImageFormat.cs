using System.Globalization;
using Bough.Contracts;
using Bough.Dashboard.Components.Shared;

namespace Bough.Dashboard.Components.Images;

/// <summary>How the images page words sizes, times, digests and commands: short, in one place.</summary>
internal static class ImageFormat
{
    /// <summary>A size (<see cref="Units.Bytes"/>), or a dash when unknown.</summary>
    public static string Bytes(long? bytes) => bytes is { } b ? Units.Bytes(b) : "–";

    /// <summary>A time (<see cref="Units.Time"/>), or a dash when unknown.</summary>
    public static string Time(DateTimeOffset? at) => at is { } t ? Units.Time(t) : "–";

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
