using Bough.HostSetup;

namespace Bough.Engine.Block;

/// <summary>
/// Per-sandbox copy-on-write disks: a qcow2 overlay whose backing file is the image's
/// read-only qcow2, so a sandbox never writes into an image.
/// </summary>
public static class DiskOverlay
{
    public static Task CreateAsync(string backingQcow2, string overlayPath, CancellationToken ct) =>
        CommandRunner.RunCheckedAsync("qemu-img",
            ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backingQcow2, overlayPath], ct: ct);
}
