namespace Bough.Images;

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
