namespace Bough.Network;

/// <summary>
/// One sandbox's own egress policy, on top of the fixed rules every VM uid gets (never the host,
/// its loopback or addresses, private, link-local, multicast or broadcast ranges, never IPv6).
/// </summary>
/// <param name="Internet">False: nothing leaves the VM, DNS included.</param>
/// <param name="AllowOut">IPv4 CIDRs (or bare addresses) the VM may reach. Non-empty: everything else is refused.
/// Empty or null: no allow-list.</param>
/// <param name="DenyOut">IPv4 CIDRs (or bare addresses) the VM may not reach.</param>
/// <remarks>
/// Where an address matches both lists, the more specific CIDR wins, and deny wins a tie: so
/// <c>denyOut: [0.0.0.0/0], allowOut: [203.0.113.7]</c> (the E2B idiom) allows that one host, and
/// <c>allowOut: [203.0.113.0/24], denyOut: [203.0.113.9]</c> allows the network but that one host.
/// DNS to the host's resolvers is allowed whenever <paramref name="Internet"/> is true, whatever the lists say.
/// </remarks>
public sealed record VmEgressPolicy(bool Internet, IReadOnlyList<string>? AllowOut = null, IReadOnlyList<string>? DenyOut = null)
{
    /// <summary>Internet on, no lists: the default sandbox.</summary>
    public static VmEgressPolicy Open { get; } = new(true);

    /// <summary>Nothing leaves the VM.</summary>
    public static VmEgressPolicy Closed { get; } = new(false);
}
