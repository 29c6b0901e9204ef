using Bough.Network;

namespace Bough.Network.Tests;

/// <summary>Parsing, validation and the folding of allow and deny lists: pure code, no kernel.</summary>
public sealed class PolicyTests
{
    [Theory]
    [InlineData("203.0.113.0/24", "203.0.113.0/24")]
    [InlineData("203.0.113.7", "203.0.113.7/32")]
    [InlineData(" 0.0.0.0/0 ", "0.0.0.0/0")]
    [InlineData("255.255.255.255/32", "255.255.255.255/32")]
    public void Valid_cidrs_parse(string text, string expected) => Assert.Equal(expected, Ipv4Cidr.Parse(text).ToString());

    [Theory]
    [InlineData("10", "not an IPv4 CIDR")]
    [InlineData("1.2.3", "not an IPv4 CIDR")]
    [InlineData("010.0.0.1", "not an IPv4 CIDR")]
    [InlineData("256.0.0.1", "not an IPv4 CIDR")]
    [InlineData("example.com", "not an IPv4 CIDR")]
    [InlineData("1.2.3.4/33", "prefix length")]
    [InlineData("1.2.3.4/", "prefix length")]
    [InlineData("1.2.3.4/08", "prefix length")]
    [InlineData("203.0.113.7/24", "host bits set: did you mean 203.0.113.0/24 or 203.0.113.7/32")]
    [InlineData("2001:db8::/32", "IPv6")]
    [InlineData("::1", "IPv6")]
    public void Invalid_cidrs_say_why(string text, string why)
    {
        Assert.False(Ipv4Cidr.TryParse(text, out _, out var problem));
        Assert.Contains(why, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Validator_lists_every_problem_and_refuses_allow_entries_inside_blocked_ranges()
    {
        var problems = EgressPolicyValidator.Validate(new VmEgressPolicy(true,
            ["10.1.2.0/24", "169.254.169.254", "fd00::/8", "0.0.0.0/0", "203.0.113.0/24"],
            ["10.0.0.0/8", "nonsense"]));

        Assert.Equal(4, problems.Count);
        Assert.Contains(problems, p => p.Contains("'10.1.2.0/24' lies inside 10.0.0.0/8", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'169.254.169.254' lies inside 169.254.0.0/16, link-local", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("allowOut: 'fd00::/8' is IPv6", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("denyOut: 'nonsense'", StringComparison.Ordinal));
        // Containing a blocked range is fine (the fixed rules run first); denying one is redundant, not wrong.
        Assert.DoesNotContain(problems, p => p.Contains("0.0.0.0/0", StringComparison.Ordinal) || p.Contains("'10.0.0.0/8'", StringComparison.Ordinal));

        var thrown = Assert.Throws<InvalidEgressPolicyException>(() => EgressPolicyValidator.Parse(new VmEgressPolicy(true, ["::1"])));
        Assert.Single(thrown.Problems);
        Assert.Contains("IPv6", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validator_caps_the_list_length()
    {
        var many = Enumerable.Range(0, EgressPolicyValidator.MaxEntriesPerList + 1).Select(i => $"203.0.{i / 256}.{i % 256}").ToList();
        Assert.Contains("at most", Assert.Single(EgressPolicyValidator.Validate(new VmEgressPolicy(true, DenyOut: many))), StringComparison.Ordinal);
        Assert.Empty(EgressPolicyValidator.Validate(new VmEgressPolicy(true, DenyOut: many[..^1])));
    }

    [Fact]
    public void No_lists_accept_everything()
    {
        var e = Fold([], []);
        Assert.True(e.DefaultAccept);
        Assert.Empty(e.Exceptions);
    }

    [Fact]
    public void Deny_list_alone_rejects_exactly_its_ranges_merged()
    {
        var e = Fold([], ["203.0.113.0/25", "203.0.113.128/25", "198.51.100.7"]);
        Assert.True(e.DefaultAccept);
        Assert.Equal(["198.51.100.7-198.51.100.7", "203.0.113.0-203.0.113.255"], Show(e));
    }

    [Fact]
    public void Allow_list_rejects_the_rest_and_a_more_specific_deny_cuts_a_hole()
    {
        var e = Fold(["203.0.113.0/24"], ["203.0.113.9"]);
        Assert.False(e.DefaultAccept);
        Assert.Equal(["203.0.113.0-203.0.113.8", "203.0.113.10-203.0.113.255"], Show(e));
    }

    [Fact]
    public void The_e2b_idiom_deny_everything_allow_one_host_allows_that_host()
    {
        var e = Fold(["203.0.113.7"], ["0.0.0.0/0"]);
        Assert.False(e.DefaultAccept);
        Assert.Equal(["203.0.113.7-203.0.113.7"], Show(e));
    }

    [Fact]
    public void Deny_wins_a_tie_and_allow_wins_inside_a_wider_deny()
    {
        Assert.Empty(Fold(["203.0.113.0/24"], ["203.0.113.0/24"]).Exceptions);
        var e = Fold(["198.51.100.0/24"], ["198.51.0.0/16", "0.0.0.0/0"]);
        Assert.Equal(["198.51.100.0-198.51.100.255"], Show(e));
        Assert.Equal(["0.0.0.0-255.255.255.255"], Show(Fold([], ["0.0.0.0/0"])));
    }

    [Fact]
    public void Resolvers_are_the_ipv4_nameserver_lines()
    {
        using var dir = new TempDir("resolv");
        var path = dir.Combine("resolv.conf");
        File.WriteAllText(path, "# comment\nsearch example\nnameserver 10.255.255.53\nnameserver fd00::53\n  nameserver\t127.0.0.53 \nnameserver bogus\noptions edns0\n");
        Assert.Equal([0x0AFFFF35u, 0x7F000035u], HostNetworkFacts.ReadResolvers(path));
        Assert.Empty(HostNetworkFacts.ReadResolvers(dir.Combine("missing")));
    }

    [Fact]
    public void Sandbox_ids_become_harmless_comments()
    {
        Assert.Equal("sandbox sbx_1-a.b", NftRuleset.Label("sbx_1-a.b"));
        Assert.Equal("sandbox flushruleset", NftRuleset.Label("\"; flush ruleset"));
        Assert.Equal(8 + 64, NftRuleset.Label(new string('a', 500)).Length);
    }

    private static EffectiveEgress Fold(string[] allow, string[] deny) =>
        EffectiveEgress.Compute(allow.Select(Ipv4Cidr.Parse).ToList(), deny.Select(Ipv4Cidr.Parse).ToList());

    private static string[] Show(EffectiveEgress e) =>
        e.Exceptions.Select(r => $"{Ipv4Cidr.FormatAddress(r.First)}-{Ipv4Cidr.FormatAddress(r.Last)}").ToArray();
}
