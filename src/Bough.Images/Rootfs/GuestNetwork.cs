namespace Bough.Images.Rootfs;

/// <summary>
/// The guest side of QEMU's user-mode network (fixed addresses of its virtual LAN) and the hostname
/// before the agent's configure names the guest after its sandbox. Written into every image's
/// init (base: rcS, user images: <c>/.bough/init</c>) and /etc files.
/// </summary>
public static class GuestNetwork
{
    public const string Ip = "10.0.2.15";
    public const string Gateway = "10.0.2.2";
    public const string Dns = "10.0.2.3";
    public const string DefaultHostname = "bough";
}
