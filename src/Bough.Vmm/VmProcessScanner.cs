namespace Bough.Vmm;

/// <summary>
/// Finds QEMU processes by what they reference on disk rather than by pidfile, so orphans are
/// found even when a pidfile was never written or was deleted (e.g. a crash mid-launch).
/// </summary>
public static class VmProcessScanner
{
    /// <summary>PIDs of live QEMU processes whose command line references a path under <paramref name="directoryPrefix"/>.</summary>
    public static IReadOnlyList<int> FindQemuProcessesUnder(string directoryPrefix)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directoryPrefix);
        string root = Path.GetFullPath(directoryPrefix);
        var found = new List<int>();
        foreach (int pid in ProcFs.EnumeratePids())
        {
            string[]? argv = ProcFs.ReadCmdline(pid);
            if (argv is null || !ProcFs.IsQemu(argv)) continue;
            if (ProcFs.ReferencesDirectory(argv, root) && ProcFs.IsRunning(pid)) found.Add(pid);
        }
        return found;
    }
}
