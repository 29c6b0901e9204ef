namespace Bough.Network;

/// <summary>
/// Folds a policy's allow and deny lists into one default verdict plus the address ranges that
/// differ from it, which is what one nftables set and two rules can express. The rule for an
/// address both lists match: the most specific CIDR wins, deny wins a tie. CIDRs are either nested
/// or disjoint, so painting them from the widest to the narrowest gives exactly that.
/// </summary>
/// <param name="DefaultAccept">The verdict for addresses no listed range decides otherwise: accept
/// unless an allow-list was given.</param>
/// <param name="Exceptions">Disjoint, sorted, merged ranges whose verdict is the opposite of the default.</param>
internal sealed record EffectiveEgress(bool DefaultAccept, IReadOnlyList<(uint First, uint Last)> Exceptions)
{
    public static EffectiveEgress Compute(IReadOnlyList<Ipv4Cidr> allow, IReadOnlyList<Ipv4Cidr> deny)
    {
        var defaultAccept = allow.Count == 0;
        // Elementary intervals between every boundary; each gets the verdict of the last rule painted over it.
        var points = allow.Concat(deny).SelectMany(c => new[] { (ulong)c.First, (ulong)c.Last + 1 })
            .Append(0UL).Append(1UL << 32).Distinct().Order().ToArray();
        var accept = new bool[points.Length - 1];
        Array.Fill(accept, defaultAccept);
        var rules = allow.Select(c => (Cidr: c, Accept: true)).Concat(deny.Select(c => (Cidr: c, Accept: false)))
            .OrderBy(r => r.Cidr.PrefixLength).ThenBy(r => r.Accept ? 0 : 1);
        foreach (var (cidr, verdict) in rules)
        {
            var from = Array.BinarySearch(points, (ulong)cidr.First);
            var to = Array.BinarySearch(points, (ulong)cidr.Last + 1);
            for (var i = from; i < to; i++)
                accept[i] = verdict;
        }

        var exceptions = new List<(uint, uint)>();
        for (var i = 0; i < accept.Length; i++)
        {
            if (accept[i] == defaultAccept)
                continue;
            var start = i;
            while (i + 1 < accept.Length && accept[i + 1] != defaultAccept)
                i++;
            exceptions.Add(((uint)points[start], (uint)(points[i + 1] - 1)));
        }
        return new EffectiveEgress(defaultAccept, exceptions);
    }
}
