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
        int vmUid = (await _h.RowAsync(sb.Id))!.VmUid!.Value;
        _firewall.Applied.Clear();

        var changed = await _h.Policies.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { Internet = false, AllowOut = [] },
            CancellationToken.None);

        Assert.False(changed.Internet);
        Assert.Empty(changed.Network!.AllowOut!);
        Assert.Equal(["203.0.113.9/32"], changed.Network.DenyOut); // left out: kept
        var row = (await _h.RowAsync(sb.Id))!;
        Assert.False(row.Internet);
        Assert.Equal(["203.0.113.9/32"], row.Network!.DenyOut);
        var (id, uid, policy) = Assert.Single(_firewall.Applied);
        Assert.Equal((sb.Id, vmUid), (id, uid));
        Assert.False(policy.Internet);
        Assert.Empty(policy.Rules!.AllowOut);
        Assert.Equal(["203.0.113.9/32"], policy.Rules.DenyOut);
    }

    [Fact]
    public async Task Every_vm_starts_with_its_policy_in_force_and_its_rules_go_with_it()
    {
        var sb = await CreateAsync(new NetworkRules { DenyOut = ["192.0.2.0/24"] }, internet: false);
        var row = (await _h.RowAsync(sb.Id))!;

        var (id, uid, policy) = Assert.Single(_firewall.Applied);
        Assert.Equal((sb.Id, row.VmUid), (id, uid));
        Assert.False(policy.Internet);
        Assert.Equal(["192.0.2.0/24"], policy.Rules!.DenyOut);

        // A pause stops the VM (rules removed), a resume starts a new one under a fresh uid with the stored policy.
        await _h.Branching.PauseAsync(sb.Id, CancellationToken.None);
        await WaitForAsync(() => _firewall.Removed.Contains((sb.Id, uid)));
        await _h.Branching.ResumeAsync(sb.Id, CancellationToken.None);
        var resumed = _firewall.Applied.Last();
        Assert.Equal((sb.Id, (await _h.RowAsync(sb.Id))!.VmUid!.Value), (resumed.SandboxId, resumed.VmUid));
        Assert.Equal(["192.0.2.0/24"], resumed.Policy.Rules!.DenyOut);

        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);
        await WaitForAsync(() => _firewall.Removed.Contains((sb.Id, resumed.VmUid)));
    }

    [Fact]
    public async Task After_a_crash_recovery_reinstalls_exactly_the_adopted_vms_rules_and_keeps_their_uids()
    {
        var kept = await CreateAsync(new NetworkRules { DenyOut = ["192.0.2.0/24"] });
        var gone = await CreateAsync(null);
        var keptRow = (await _h.RowAsync(kept.Id))!;
        await _h.CrashAsync();

        var firewall = new FakeEgressFirewall();
        await using var next = await EngineHarness.StartAsync(root: _h.Root, services: s => s.AddSingleton<IEgressFirewall>(firewall));
        next.Launcher.LeaveRunning(keptRow.RuntimeDir, keptRow.DiskPath); // only this VM outlived the daemon
        await next.Recovery.RecoverAsync(CancellationToken.None);

        var (id, uid, policy) = Assert.Single(Assert.Single(firewall.Reconciled));
        Assert.Equal((kept.Id, keptRow.VmUid!.Value), (id, uid));
        Assert.Equal(["192.0.2.0/24"], policy.Rules!.DenyOut);
        Assert.Equal([uid], next.Get<Boot.VmUids>().HeldBy(kept.Id));
        Assert.Empty(next.Get<Boot.VmUids>().HeldBy(gone.Id));
        // A new VM never gets the adopted VM's uid.
        var fresh = await next.Sandboxes.CreateAsync(new CreateSandboxRequest(), CancellationToken.None);
        Assert.NotEqual(uid, (await next.RowAsync(fresh.Id))!.VmUid);
    }

    [Fact]
    public async Task A_graceful_shutdown_removes_the_daemons_rules_once_its_vms_are_stopped()
    {
        await CreateAsync(null);

        await _h.Shutdown.ShutdownAsync();

        Assert.Equal(1, _firewall.RemovedAll);
    }

    [Fact]
    public async Task A_firewall_that_refuses_a_new_vms_rules_fails_the_create_before_its_vm_starts()
    {
        _firewall.FailNext = () => new InvalidOperationException("fake: nft failed");

        var ex = await Assert.ThrowsAsync<BoughException>(() => CreateAsync(null));

        Assert.Equal(ErrorCodes.CreateFailed, ex.Code);
        Assert.Empty(await _h.RowsAsync());
        Assert.Equal(0, _h.Get<Boot.VmUids>().InUse);
        Assert.Empty(_h.Launcher.Vms);
    }

    [Fact]
    public async Task A_firewall_that_refuses_leaves_the_old_policy_in_the_row_and_the_rules()
    {
        var sb = await CreateAsync(new NetworkRules { DenyOut = ["192.0.2.0/24"] });
        _firewall.Applied.Clear();
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

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (int i = 0; i < 200 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition());
    }
}
