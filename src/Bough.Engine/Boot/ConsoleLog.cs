namespace Bough.Engine.Boot;

/// <summary>A sandbox's serial console log (<c>console.log</c> in its runtime dir), written by QEMU.</summary>
internal static class ConsoleLog
{
    public static string PathIn(string runtimeDir) => Path.Combine(runtimeDir, "console.log");

    /// <summary>The last <paramref name="lines"/> lines (of the last 8 KiB), for error messages; "" if none.</summary>
    public static string Tail(string runtimeDir, int lines)
    {
        try
        {
            var path = PathIn(runtimeDir);
            if (!File.Exists(path)) return "";
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            fs.Seek(Math.Max(0, fs.Length - 8192), SeekOrigin.Begin);
            using var reader = new StreamReader(fs);
            var all = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    /// <summary>A read-only stream over the log (empty when there is none yet).</summary>
    public static Stream Open(string runtimeDir)
    {
        var path = PathIn(runtimeDir);
        if (!File.Exists(path)) return new MemoryStream([], writable: false);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true);
    }
}
