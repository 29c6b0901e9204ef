namespace Bough.TestSupport;

/// <summary>Host processes seen through /proc, the way the tests check that something really died.</summary>
public static class HostProcess
{
    /// <summary>
    /// True while the process runs. A zombie counts as dead: a daemonized QEMU is reparented to
    /// PID 1, which in some containers never reaps, and a killed command may not be reaped yet.
    /// </summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is not ("Z" or "X");
        }
        catch (IOException) { return false; }
    }

    /// <summary>Waits up to <paramref name="within"/> for the process to die; true when it did.</summary>
    public static Task<bool> WaitExitAsync(int pid, TimeSpan within) => Poll.UntilAsync(() => !IsAlive(pid), within);
}
