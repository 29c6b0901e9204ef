using System.Globalization;

namespace Bough.Cli.Commands;

/// <summary>How snapshot fields read in human output.</summary>
internal static class SnapshotFormat
{
    /// <summary>"0 B", "512 B", "4.0 KiB", "12.5 MiB", "1.2 GiB".</summary>
    public static string Bytes(long bytes)
    {
        if (bytes < 1024)
            return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        string[] units = ["KiB", "MiB", "GiB", "TiB"];
        var value = bytes / 1024.0;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }

    public static string PauseMs(long? ms) => ms is { } v ? v.ToString(CultureInfo.InvariantCulture) + " ms" : "-";

    /// <summary>The one line a capture adds on stderr for a human: "snapshot sn-… (tag), paused 12 ms".</summary>
    public static string Captured(Bough.Contracts.Snapshot s, long? pauseMs)
    {
        var tag = string.IsNullOrEmpty(s.Tag) ? "" : $" ({s.Tag})";
        var pause = pauseMs is { } ms ? $", paused {ms.ToString(CultureInfo.InvariantCulture)} ms" : "";
        return $"snapshot {s.Id}{tag}{pause}";
    }
}
