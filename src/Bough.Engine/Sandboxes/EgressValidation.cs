using System.Globalization;
using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Checks egress rules and brings them to one form: IPv4 only (a sandbox never reaches IPv6),
/// each entry an address or a CIDR written as four decimal octets without leading zeros (so
/// "010.0.0.1" cannot mean octal to one reader and decimal to another), stored as its network
/// (<c>203.0.113.7/24</c> becomes <c>203.0.113.0/24</c>), without repeats.
/// </summary>
internal static class EgressValidation
{
    public const int MaxRulesPerList = 128;

    /// <summary>The create/branch form: <c>network: {allowOut, denyOut}</c>; null or both lists empty is no rules.</summary>
    public static EgressRules? Validate(NetworkRules? network, string field = "network") =>
        network is null ? null : Validate(network.AllowOut, network.DenyOut, field);

    public static EgressRules? Validate(IReadOnlyList<string>? allowOut, IReadOnlyList<string>? denyOut, string field)
    {
        var allow = List(allowOut, $"{field}.allowOut");
        var deny = List(denyOut, $"{field}.denyOut");
        return allow.Count == 0 && deny.Count == 0 ? null : new EgressRules(allow, deny);
    }

    /// <summary>The JSON form (null when there are no rules).</summary>
    public static NetworkRules? ToContract(EgressRules? rules) =>
        rules is null ? null : new NetworkRules { AllowOut = [.. rules.AllowOut], DenyOut = [.. rules.DenyOut] };

    private static List<string> List(IReadOnlyList<string>? entries, string field)
    {
        if (entries is null) return [];
        if (entries.Count > MaxRulesPerList)
            throw BoughException.Invalid($"{field}: at most {MaxRulesPerList} entries (got {entries.Count})");
        var result = new List<string>();
        for (var i = 0; i < entries.Count; i++)
        {
            var cidr = Cidr(entries[i], $"{field}[{i}]");
            if (!result.Contains(cidr)) result.Add(cidr);
        }
        return result;
    }

    /// <summary>"a.b.c.d" or "a.b.c.d/n" as its network in "a.b.c.d/n" form.</summary>
    public static string Cidr(string? value, string field)
    {
        if (value is null) throw BoughException.Invalid($"{field} must be an IPv4 address or CIDR, not null");
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? value : value[..slash];
        var prefix = 32;
        if (slash >= 0 && !TryNumber(value[(slash + 1)..], 32, out prefix))
            throw Bad(value, field, "the prefix length must be 0-32");
        var octets = addressText.Split('.');
        if (octets.Length != 4) throw Bad(value, field, "IPv4 only, as four decimal octets (IPv6 is never reachable from a sandbox)");
        uint address = 0;
        foreach (var o in octets)
        {
            if (!TryNumber(o, 255, out var n)) throw Bad(value, field, "each octet must be 0-255, in decimal without leading zeros");
            address = (address << 8) | (uint)n;
        }
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        var network = address & mask;
        return string.Create(CultureInfo.InvariantCulture,
            $"{network >> 24}.{(network >> 16) & 255}.{(network >> 8) & 255}.{network & 255}/{prefix}");
    }

    private static bool TryNumber(string text, int max, out int value)
    {
        value = 0;
        if (text.Length is 0 or > 3 || (text.Length > 1 && text[0] == '0')) return false;
        foreach (var c in text)
        {
            if (c is < '0' or > '9') return false;
            value = value * 10 + (c - '0');
        }
        return value <= max;
    }

    private static BoughException Bad(string value, string field, string why) =>
        BoughException.Invalid($"{field}: '{value}' is not an IPv4 address or CIDR ({why})");
}
