using System.Globalization;
using System.Text;

namespace Bough.Network;

/// <summary>
/// Writes the whole Bough table as one <c>nft -f</c> script: create-if-missing, delete, create
/// with everything. nftables applies a script as one transaction, so the kernel holds either the
/// old table or the new one, never a half-built one and never none.
/// </summary>
/// <remarks>
/// Layout. <c>output</c> (the only base chain) sends every packet whose socket belongs to a uid
/// in the VM range to <c>vm</c>; packets without a socket owner (kernel replies) and other
/// users' packets are untouched. <c>vm</c> lets replies of connections others opened to the VM
/// out (exposed ports, which QEMU accepts on the host), refuses IPv6, and jumps to the uid's own
/// chain; a uid without one is refused everything. A uid chain allows DNS to the host's
/// resolvers (internet on), refuses what <c>never</c> lists (host addresses, fixed ranges), then
/// applies the sandbox's lists. The policy is checked on every packet the VM sends, not only on
/// the first of a connection, so a policy change also cuts connections already open.
/// Refusals are <c>reject</c>, not <c>drop</c>: the VM's stack (and so the guest) learns at once
/// instead of waiting out a timeout.
/// </remarks>
internal static class NftRuleset
{
    private const string Reject = "reject with icmpx admin-prohibited";

    /// <summary>The script that replaces the table with one holding exactly <paramref name="uids"/>.</summary>
    public static string Render(NftablesFirewallOptions options, HostNetworkFacts host, IReadOnlyDictionary<int, UidRules> uids)
    {
        var t = options.TableName;
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"table inet {t} {{\n}}\ndelete table inet {t}\ntable inet {t} {{\n");
        AppendSet(s, "host_addresses", host.Addresses.Select(a => (a, a)));
        AppendSet(s, "never_ranges", FixedRanges.Blocked.Select(b => (b.Range.First, b.Range.Last)));
        AppendSet(s, "resolvers", host.Resolvers.Select(a => (a, a)));
        s.Append(CultureInfo.InvariantCulture, $$"""
            	chain output {
            		type filter hook output priority filter; policy accept;
            		meta skuid {{options.FirstVmUid}}-{{options.LastVmUid}} jump vm
            	}
            	chain vm {
            		ct direction reply accept
            		meta nfproto ipv6 {{Reject}}

            """);
        if (uids.Count > 0)
            s.Append("\t\tmeta skuid vmap { ").AppendJoin(", ", uids.Keys.Order().Select(u => $"{Num(u)} : jump uid_{Num(u)}")).Append(" }\n");
        s.Append(CultureInfo.InvariantCulture, $$"""
            		{{Reject}}
            	}
            	chain never {
            		fib daddr type { local, broadcast, multicast } {{Reject}}
            		ip daddr @host_addresses {{Reject}}
            		ip daddr @never_ranges {{Reject}}
            	}

            """);
        foreach (var (uid, rules) in uids.OrderBy(p => p.Key))
            AppendUid(s, uid, rules);
        s.Append("}\n");
        return s.ToString();
    }

    private static void AppendUid(StringBuilder s, int uid, UidRules rules)
    {
        var u = Num(uid);
        var egress = rules.Egress;
        if (rules.Internet && egress.Exceptions.Count > 0)
            AppendSet(s, $"egress_{u}", egress.Exceptions);
        s.Append(CultureInfo.InvariantCulture, $"\tchain uid_{u} {{\n\t\tcomment \"{Label(rules.SandboxId)}\"\n");
        if (!rules.Internet)
        {
            s.Append(CultureInfo.InvariantCulture, $"\t\t{Reject}\n\t}}\n");
            return;
        }
        s.Append("\t\tip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept\n\t\tjump never\n");
        var (exception, rest) = egress.DefaultAccept ? (Reject, "accept") : ("accept", Reject);
        if (egress.Exceptions.Count > 0)
            s.Append(CultureInfo.InvariantCulture, $"\t\tip daddr @egress_{u} {exception}\n");
        s.Append(CultureInfo.InvariantCulture, $"\t\t{rest}\n\t}}\n");
    }

    private static void AppendSet(StringBuilder s, string name, IEnumerable<(uint First, uint Last)> ranges)
    {
        s.Append(CultureInfo.InvariantCulture, $"\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags interval\n");
        var elements = ranges.Select(r => r.First == r.Last
            ? Ipv4Cidr.FormatAddress(r.First)
            : $"{Ipv4Cidr.FormatAddress(r.First)}-{Ipv4Cidr.FormatAddress(r.Last)}").ToList();
        if (elements.Count > 0)
            s.Append("\t\telements = { ").AppendJoin(", ", elements).Append(" }\n");
        s.Append("\t}\n");
    }

    /// <summary>A sandbox id as a comment: only characters that need no quoting, at most 64 (nft caps comments at 128 bytes).</summary>
    internal static string Label(string sandboxId)
    {
        var safe = new string(sandboxId.Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.').Take(64).ToArray());
        return "sandbox " + (safe.Length == 0 ? "?" : safe);
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
