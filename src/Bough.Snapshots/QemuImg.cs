using System.Diagnostics;

namespace Bough.Snapshots;

/// <summary>qemu-img invocations used by snapshots.</summary>
internal static class QemuImg
{
    public static async Task RunAsync(IEnumerable<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("qemu-img")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new SnapshotException("could not start qemu-img");
        var stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        var stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        try
        {
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        await stdout.ConfigureAwait(false);
        if (p.ExitCode != 0)
            throw new SnapshotException($"qemu-img {string.Join(' ', psi.ArgumentList)} failed ({p.ExitCode}): {(await stderr.ConfigureAwait(false)).Trim()}");
    }
}
