using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Network;
using Bough.Engine.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;

namespace Bough.Engine.Tests.Lifetime;

/// <summary>The egress policy surface: validation, storage, the sandbox JSON, inheritance by branch children, PUT /network.</summary>
public sealed class EgressPolicyTests : IAsyncLifetime
{
    private readonly FakeEgressFirewall _firewall = new();
    private EngineHarness _h = null!;

    public async Task InitializeAsync() =>
        _h = await EngineHarness.StartAsync(services: s => s.AddSingleton<IEgressFirewall>(_firewall));

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private Task<Sandbox> CreateAsync(NetworkRules? network, bool? internet = null) =>
        _h.Sandboxes.CreateAsync(new CreateSandboxRequest { Network = network, Internet = internet }, CancellationToken.None);

    [Fact]
    public async Task Rules_are_stored_as_networks_and_shown_in_the_sandbox_json()
    {
        var sb = await CreateAsync(new NetworkRules
        {
            AllowOut = ["203.0.113.77/24", "198.51.100.1", "203.0.113.0/24"], DenyOut = ["0.0.0.0/0"],
        }, internet: false);

        Assert.False(sb.Internet);
        Assert.Equal(["203.0.113.0/24", "198.51.100.1/32"], sb.Network!.AllowOut);
        Assert.Equal(["0.0.0.0/0"], sb.Network.DenyOut);
        var row = (await _h.RowAsync(sb.Id))!;
        Assert.Equal(["203.0.113.0/24", "198.51.100.1/32"], row.Network!.AllowOut);
        Assert.Equal(sb.Network.AllowOut, (await _h.Sandboxes.GetAsync(sb.Id, CancellationToken.None)).Network!.AllowOut);
        Assert.Null((await CreateAsync(new NetworkRules { AllowOut = [], DenyOut = [] })).Network); // empty lists: no rules
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("::1")]
    [InlineData("2001:db8::/32")]
    [InlineData("1.2.3")]
    [InlineData("01.2.3.4")]
    [InlineData("1.2.3.4/")]
    [InlineData("1.2.3.256")]
    [InlineData("a.b.c.d")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4/-1")]
    public async Task Anything_but_an_IPv4_address_or_CIDR_is_refused(string entry)
    {
        var ex = await Assert.ThrowsAsync<BoughException>(() => CreateAsync(new NetworkRules { DenyOut = ["8.8.8.8", entry] }));
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
        Assert.Contains("network.denyOut[1]", ex.Message, StringComparison.Ordinal);
        Assert.Empty(await _h.RowsAsync());
    }

    [Fact]
    public async Task Branch_children_inherit_the_sources_policy_unless_the_branch_overrides_it()
    {
        var source = await CreateAsync(new NetworkRules { AllowOut = ["203.0.113.0/24"] }, internet: false);

        var inherited = Assert.Single((await _h.Branching.BranchAsync(source.Id, new BranchRequest(), CancellationToken.None)).Children);
        Assert.False(inherited.Internet);
        Assert.Equal(["203.0.113.0/24"], inherited.Network!.AllowOut);

        var overridden = Assert.Single((await _h.Branching.BranchAsync(source.Id, new BranchRequest
        {
            Internet = true, Network = new NetworkRules { DenyOut = ["198.51.100.0/24"] },
        }, CancellationToken.None)).Children);
        Assert.True(overridden.Internet);
        Assert.Equal(["198.51.100.0/24"], overridden.Network!.DenyOut);
        Assert.Empty(overridden.Network.AllowOut!);

        var cleared = Assert.Single((await _h.Branching.BranchAsync(source.Id, new BranchRequest { Network = new NetworkRules() },
            CancellationToken.None)).Children);
        Assert.Null(cleared.Network);
        Assert.Null((await _h.RowAsync(cleared.Id))!.Network);
    }

    [Fact]
    public async Task Put_network_persists_keeps_what_is_left_out_and_applies_the_firewall_to_the_vms_uid()
    {
        var sb = await CreateAsync(new NetworkRules { AllowOut = ["203.0.113.0/24"], DenyOut = ["203.0.113.9"] });
        await GiveVmUidAsync(sb.Id, 61_000);

        var changed = await _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { Internet = false, AllowOut = [] },
            CancellationToken.None);

        Assert.False(changed.Internet);
        Assert.Empty(changed.Network!.AllowOut!);
        Assert.Equal(["203.0.113.9/32"], changed.Network.DenyOut); // left out: kept
        var row = (await _h.RowAsync(sb.Id))!;
        Assert.False(row.Internet);
        Assert.Equal(["203.0.113.9/32"], row.Network!.DenyOut);
        var (id, uid, policy) = Assert.Single(_firewall.Applied);
        Assert.Equal((sb.Id, 61_000), (id, uid));
        Assert.False(policy.Internet);
        Assert.Empty(policy.Rules!.AllowOut);
        Assert.Equal(["203.0.113.9/32"], policy.Rules.DenyOut);
    }

    [Fact]
    public async Task Without_a_vm_uid_the_policy_is_only_stored()
    {
        var sb = await CreateAsync(null);

        var changed = await _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { DenyOut = ["192.0.2.0/24"] }, CancellationToken.None);

        Assert.Equal(["192.0.2.0/24"], changed.Network!.DenyOut);
        Assert.Empty(_firewall.Applied);
    }

    [Fact]
    public async Task A_firewall_that_refuses_leaves_the_old_policy_in_the_row_and_the_rules()
    {
        var sb = await CreateAsync(new NetworkRules { DenyOut = ["192.0.2.0/24"] });
        await GiveVmUidAsync(sb.Id, 61_001);
        _firewall.FailNext = () => new InvalidOperationException("fake: nft failed");

        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { Internet = false, DenyOut = [] }, CancellationToken.None));

        Assert.Equal(ErrorCodes.Internal, ex.Code);
        var row = (await _h.RowAsync(sb.Id))!;
        Assert.True(row.Internet);
        Assert.Equal(["192.0.2.0/24"], row.Network!.DenyOut);
        Assert.Equal(2, _firewall.Applied.Count);
        var restored = _firewall.Applied.Last().Policy; // the old rules went back
        Assert.True(restored.Internet);
        Assert.Equal(["192.0.2.0/24"], restored.Rules!.DenyOut);
    }

    [Fact]
    public async Task A_paused_sandboxs_policy_can_change_and_bad_entries_change_nothing()
    {
        var sb = await CreateAsync(null);
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);

        var changed = await _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { AllowOut = ["203.0.113.1"] }, CancellationToken.None);
        Assert.Equal(["203.0.113.1/32"], changed.Network!.AllowOut);
        Assert.Equal(["203.0.113.1/32"], (await _h.RowAsync(sb.Id))!.Network!.AllowOut);

        var ex = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { Internet = false, AllowOut = ["nope"] }, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
        Assert.True((await _h.RowAsync(sb.Id))!.Internet);
        var missing = await Assert.ThrowsAsync<BoughException>(() =>
            _h.Policies.UpdateNetworkAsync("sb-doesnotexist", new UpdateNetworkRequest(), CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotFound, missing.Code);
    }

    /// <summary>What the booter will record once VMs run as their own uid (the jail's part); set here directly.</summary>
    private async Task GiveVmUidAsync(string id, int uid) =>
        await _h.Runtime(id).UpdateAsync(_h.SandboxRows, r => r with { VmUid = uid });
}
