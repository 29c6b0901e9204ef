using System.Diagnostics;

namespace Bough.Engine.Block;

/// <summary>
/// Per-sandbox copy-on-write disks: a qcow2 overlay whose backing file is the image's
/// read-only qcow2, so a sandbox never writes into an image.
/// </summary>
public static class DiskOverlay
{
    public static async Task CreateAsync(string backingQcow2, string overlayPath, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("qemu-img")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backingQcow2, overlayPath })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start qemu-img");
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0)
            throw new IOException($"qemu-img create failed ({p.ExitCode}): {(await stderr).Trim()}");
    }
}
