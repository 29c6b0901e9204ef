namespace Bough.Network;

/// <summary>
/// The IPv4 ranges no sandbox may ever reach, whatever its policy says: this host, the networks
/// around it and the cloud's own services. (IPv6 is refused wholesale, the host's own addresses
/// are found at apply time and by the kernel's local-address lookup.)
/// </summary>
internal static class FixedRanges
{
    /// <summary>Each blocked range with the reason a user is told when an allowOut entry falls inside it.</summary>
    public static IReadOnlyList<(Ipv4Cidr Range, string What)> Blocked { get; } =
    [
        (Ipv4Cidr.Parse("0.0.0.0/8"), "'this network' (0.0.0.0 reaches the host itself)"),
        (Ipv4Cidr.Parse("10.0.0.0/8"), "a private range"),
        (Ipv4Cidr.Parse("100.64.0.0/10"), "the carrier-grade NAT range"),
        (Ipv4Cidr.Parse("127.0.0.0/8"), "the host's loopback"),
        (Ipv4Cidr.Parse("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
        (Ipv4Cidr.Parse("172.16.0.0/12"), "a private range"),
        (Ipv4Cidr.Parse("192.168.0.0/16"), "a private range"),
        (Ipv4Cidr.Parse("224.0.0.0/4"), "multicast"),
        (Ipv4Cidr.Parse("240.0.0.0/4"), "reserved and broadcast"),
    ];
}
