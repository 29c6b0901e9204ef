namespace Bough.Network;

/// <summary>
/// Checks an egress policy before anything is installed, so the API can refuse a bad one with a
/// 400 that names every problem. Decided here: IPv6 entries are refused (IPv6 is blocked for every
/// sandbox, an entry would promise what cannot be); an allowOut entry wholly inside an
/// always-blocked range (10.1.2.0/24, 169.254.169.254) is refused, saying which range, because
/// silently ignoring it would leave the user believing it works; an allowOut entry that merely
/// contains blocked ranges (0.0.0.0/0) is accepted and the blocked ranges stay blocked, as the
/// fixed rules run first.
/// </summary>
public static class EgressPolicyValidator
{
    /// <summary>Most entries either list may hold; each becomes firewall state on the host.</summary>
    public const int MaxEntriesPerList = 1024;

    /// <summary>Every problem with <paramref name="policy"/>, one sentence each; empty when it is valid.</summary>
    public static IReadOnlyList<string> Validate(VmEgressPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var problems = new List<string>();
        ParseList(policy.AllowOut, "allowOut", checkBlocked: true, problems);
        ParseList(policy.DenyOut, "denyOut", checkBlocked: false, problems);
        return problems;
    }

    /// <summary>The parsed policy; throws <see cref="InvalidEgressPolicyException"/> listing every problem.</summary>
    internal static ParsedEgressPolicy Parse(VmEgressPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var problems = new List<string>();
        var allow = ParseList(policy.AllowOut, "allowOut", checkBlocked: true, problems);
        var deny = ParseList(policy.DenyOut, "denyOut", checkBlocked: false, problems);
        if (problems.Count > 0)
            throw new InvalidEgressPolicyException(problems);
        return new ParsedEgressPolicy(policy.Internet, allow, deny);
    }

    private static List<Ipv4Cidr> ParseList(IReadOnlyList<string>? entries, string name, bool checkBlocked, List<string> problems)
    {
        var parsed = new List<Ipv4Cidr>();
        if (entries is null)
            return parsed;
        if (entries.Count > MaxEntriesPerList)
        {
            problems.Add($"{name} has {entries.Count} entries; at most {MaxEntriesPerList} are allowed");
            return parsed;
        }
        foreach (var entry in entries)
        {
            if (entry is null)
            {
                problems.Add($"{name}: a null entry");
                continue;
            }
            if (!Ipv4Cidr.TryParse(entry, out var cidr, out var problem))
            {
                problems.Add($"{name}: {problem}");
                continue;
            }
            if (checkBlocked && FixedRanges.Blocked.FirstOrDefault(b => cidr.IsInside(b.Range)) is { What: not null } blocked)
            {
                problems.Add($"{name}: '{entry}' lies inside {blocked.Range}, {blocked.What}, which sandboxes can never reach");
                continue;
            }
            parsed.Add(cidr);
        }
        return parsed;
    }
}

/// <summary>A validated policy: the lists as networks.</summary>
internal sealed record ParsedEgressPolicy(bool Internet, IReadOnlyList<Ipv4Cidr> Allow, IReadOnlyList<Ipv4Cidr> Deny);
