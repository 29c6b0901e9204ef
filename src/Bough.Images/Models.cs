namespace Bough.Images;

/// <summary>
/// A guest kernel ready to boot: the bzImage, the initramfs that loads its virtio modules and
/// switches to the root disk, the kernel version and the command line QEMU must pass with <c>-append</c>.
/// </summary>
public sealed record GuestKernel(string KernelPath, string InitrdPath, string Version, string CommandLine);

/// <summary>
/// A built root filesystem image. <see cref="DiskPath"/> is a qcow2 file that must only ever be used
/// read-only, as the backing file of per-sandbox overlays; it never changes once published (a rebuild
/// publishes a new directory), so overlays created from it stay valid.
/// </summary>
public sealed record BaseImage(string Name, string DiskPath, string InputHash, DateTimeOffset BuiltAt);

/// <summary>Lines the guest prints on its serial console, for hosts and tests that watch it.</summary>
public static class GuestMarkers
{
    /// <summary>Printed by the initramfs in probe mode (kernel arg <c>bough.probe=1</c>) right before it powers off.</summary>
    public const string ProbeOk = Bough.HostSetup.AccelerationProbe.ProbeMarker;

    /// <summary>Printed by the base image's sysinit script when mounts, hostname and network are set up.</summary>
    public const string InitDone = "BOUGH_INIT_DONE";

    /// <summary>Prefix of a line printed by the initramfs when it cannot continue (followed by the reason).</summary>
    public const string InitFailed = "BOUGH_INIT_FAILED";

    /// <summary>Name of the virtio-serial port the agent talks on (<c>-device virtserialport,name=...</c>).</summary>
    public const string AgentPortName = "org.bough.agent";
}
