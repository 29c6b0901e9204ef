using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Recovery;

/// <summary>Finds and kills QEMU processes by the runtime directory their command line names.</summary>
internal static class VmReaper
{
    /// <summary>Kills any QEMU whose command line points into <paramref name="runtimeDir"/> and waits (briefly) for them to go.</summary>
    public static async Task KillUnderAsync(string runtimeDir, ILogger log)
    {
        var prefix = runtimeDir.TrimEnd('/') + "/";
        foreach (var pid in VmProcessScanner.FindQemuProcessesUnder(prefix))
        {
            log.LogInformation("killing leftover QEMU {Pid} of {Dir}", pid, runtimeDir);
            Kill(pid);
        }
        for (var i = 0; i < 50 && VmProcessScanner.FindQemuProcessesUnder(prefix).Count > 0; i++)
            await Task.Delay(20);
    }

    /// <summary>Kills every QEMU under <paramref name="sandboxesDir"/> not in <paramref name="keep"/> (start-up).</summary>
    public static void KillOrphans(string sandboxesDir, IReadOnlySet<int> keep, ILogger log)
    {
        foreach (var pid in VmProcessScanner.FindQemuProcessesUnder(sandboxesDir.TrimEnd('/') + "/"))
        {
            if (keep.Contains(pid)) continue;
            log.LogWarning("killing orphaned QEMU process {Pid} that no sandbox accounts for", pid);
            Kill(pid);
        }
    }

    private static void Kill(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            p.Kill();
        }
        catch (ArgumentException) { }
        catch (InvalidOperationException) { }
    }
}
