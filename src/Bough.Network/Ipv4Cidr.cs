using System.Globalization;

namespace Bough.Network;

/// <summary>
/// An IPv4 network in CIDR form. The parser is strict on purpose: <see cref="System.Net.IPAddress.TryParse(string, out System.Net.IPAddress?)"/>
/// reads "10" as 0.0.0.10 and "010.1" as octal, and a firewall must not guess what a user meant.
/// Accepted: four decimal octets without leading zeros, optionally "/0".."/32" (a bare address is a /32).
/// </summary>
internal readonly record struct Ipv4Cidr(uint Network, int PrefixLength)
{
    /// <summary>The first address of the network.</summary>
    public uint First => Network;

    /// <summary>The last address of the network.</summary>
    public uint Last => Network | ~Mask(PrefixLength);

    public static Ipv4Cidr Parse(string text) =>
        TryParse(text, out var cidr, out var problem) ? cidr : throw new InvalidEgressPolicyException(problem);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="problem"/> says why, quoting the input.</summary>
    public static bool TryParse(string text, out Ipv4Cidr cidr, out string problem)
    {
        cidr = default;
        var trimmed = text.Trim();
        if (trimmed.Contains(':', StringComparison.Ordinal))
        {
            problem = $"'{text}' is IPv6: sandboxes have no IPv6 egress at all, give IPv4 CIDRs";
            return false;
        }
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? trimmed : trimmed[..slash];
        var prefix = 32;
        if (slash >= 0 && !TryParsePrefix(trimmed[(slash + 1)..], out prefix))
        {
            problem = $"'{text}' has no valid prefix length (0 to 32 after the '/')";
            return false;
        }
        if (!TryParseAddress(addressText, out var address))
        {
            problem = $"'{text}' is not an IPv4 CIDR such as 203.0.113.0/24 or an address such as 203.0.113.7";
            return false;
        }
        if ((address & ~Mask(prefix)) != 0)
        {
            var network = new Ipv4Cidr(address & Mask(prefix), prefix);
            problem = $"'{text}' has host bits set: did you mean {network} or {FormatAddress(address)}/32?";
            return false;
        }
        cidr = new Ipv4Cidr(address, prefix);
        problem = "";
        return true;
    }

    /// <summary>True when every address of this network lies inside <paramref name="other"/>.</summary>
    public bool IsInside(Ipv4Cidr other) => PrefixLength >= other.PrefixLength && (Network & Mask(other.PrefixLength)) == other.Network;

    public override string ToString() => $"{FormatAddress(Network)}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Dotted-quad form of an address held as a big-endian number.</summary>
    public static string FormatAddress(uint address) => string.Create(CultureInfo.InvariantCulture,
        $"{address >> 24}.{(address >> 16) & 0xFF}.{(address >> 8) & 0xFF}.{address & 0xFF}");

    private static uint Mask(int prefix) => prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);

    private static bool TryParsePrefix(string text, out int prefix)
    {
        prefix = -1;
        return text.Length is 1 or 2 && text.All(char.IsAsciiDigit) && (text.Length == 1 || text[0] != '0')
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) && prefix <= 32;
    }

    private static bool TryParseAddress(string text, out uint address)
    {
        address = 0;
        var parts = text.Split('.');
        if (parts.Length != 4)
            return false;
        foreach (var part in parts)
        {
            if (part.Length is < 1 or > 3 || !part.All(char.IsAsciiDigit) || (part.Length > 1 && part[0] == '0'))
                return false;
            var octet = int.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture);
            if (octet > 255)
                return false;
            address = (address << 8) | (uint)octet;
        }
        return true;
    }
}
