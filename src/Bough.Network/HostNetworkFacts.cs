using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Bough.Network;

/// <summary>
/// What the fixed rules need to know about this host, read at every rebuild so an address or
/// resolver that changed since the last one is covered: the IPv4 addresses of all interfaces
/// (refused for sandboxes), and the IPv4 resolvers of <c>resolv.conf</c> (port 53 allowed when
/// internet is on, since QEMU's user-mode DNS forwards to them as the VM's uid).
/// </summary>
internal sealed record HostNetworkFacts(IReadOnlyList<uint> Addresses, IReadOnlyList<uint> Resolvers)
{
    public static HostNetworkFacts Discover(string resolvConfPath) => new(InterfaceAddresses(), ReadResolvers(resolvConfPath));

    private static List<uint> InterfaceAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => ToNumber(a.Address.GetAddressBytes()))
            .Distinct().Order().ToList();

    /// <summary>The IPv4 <c>nameserver</c> lines; IPv6 resolvers are useless to a sandbox without IPv6. A missing file means none.</summary>
    internal static List<uint> ReadResolvers(string resolvConfPath)
    {
        if (!File.Exists(resolvConfPath))
            return [];
        var found = new List<uint>();
        foreach (var line in File.ReadLines(resolvConfPath))
        {
            var words = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length >= 2 && words[0] == "nameserver"
                && Ipv4Cidr.TryParse(words[1], out var address, out _) && address.PrefixLength == 32)
                found.Add(address.Network);
        }
        return found.Distinct().Order().ToList();
    }

    private static uint ToNumber(byte[] b) => ((uint)b[0] << 24) | ((uint)b[1] << 16) | ((uint)b[2] << 8) | b[3];
}
