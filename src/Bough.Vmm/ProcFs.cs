using System.Globalization;
using System.Text;

namespace Bough.Vmm;

/// <summary>
/// Reads process identity from /proc. A PID alone is not an identity (PIDs are reused), so
/// callers compare the command line, which for QEMU contains the VM's runtime directory.
/// </summary>
internal static class ProcFs
{
    /// <summary>argv of a live process; null when it is gone, a zombie (empty cmdline) or unreadable.</summary>
    public static string[]? ReadCmdline(int pid)
    {
        try
        {
            byte[] raw = File.ReadAllBytes($"/proc/{pid}/cmdline");
            if (raw.Length == 0) return null;
            string text = Encoding.UTF8.GetString(raw);
            return text.TrimEnd('\0').Split('\0');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>True while the process exists and has not exited (zombies count as exited).</summary>
    public static bool IsRunning(int pid)
    {
        char? state = ReadState(pid);
        return state is not null and not 'Z' and not 'X';
    }

    /// <summary>Single-letter state from /proc/PID/stat (R, S, D, Z, ...), null if the process is gone.</summary>
    public static char? ReadState(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // comm may contain spaces and parentheses; the state follows the last ')'.
            int close = stat.LastIndexOf(')');
            return close >= 0 && close + 2 < stat.Length ? stat[close + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static IEnumerable<int> EnumeratePids()
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                yield return pid;
        }
    }

    /// <summary>Whether argv[0] names a QEMU system emulator.</summary>
    public static bool IsQemu(string[] argv) =>
        argv.Length > 0 && Path.GetFileName(argv[0]).StartsWith("qemu-system", StringComparison.Ordinal);

    /// <summary>
    /// Whether any argument mentions a path inside <paramref name="directory"/> (QEMU arguments
    /// embed paths in option strings such as <c>path=/x/qmp.sock</c>, so this is a substring test
    /// anchored on a trailing separator to avoid matching <c>/x/vm1</c> against <c>/x/vm10</c>).
    /// </summary>
    public static bool ReferencesDirectory(string[] argv, string directory)
    {
        string prefix = Path.TrimEndingDirectorySeparator(directory) + "/";
        foreach (string arg in argv)
        {
            if (arg.Contains(prefix, StringComparison.Ordinal)) return true;
        }
        return false;
    }
}
