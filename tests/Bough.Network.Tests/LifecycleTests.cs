using Bough.Network;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Network.Tests;

/// <summary>What the firewall leaves in the kernel: real nft, each test with its own table and uid range.</summary>
// xunit 2 disposes a test class through IAsyncLifetime (it ignores IAsyncDisposable), which is how the fields go.
#pragma warning disable CA1001
public sealed class LifecycleTests : IAsyncLifetime
#pragma warning restore CA1001
{
    private readonly TestFirewall _fw = new();
    private static CancellationToken Ct => CancellationToken.None;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _fw.DisposeAsync();

    [Fact]
    public async Task Apply_installs_one_chain_per_uid_and_is_idempotent()
    {
        await _fw.Firewall.ApplyAsync("sbx-a", _fw.Uid(1), new VmEgressPolicy(true, ["203.0.113.0/24"], ["203.0.113.9"]), Ct);
        await _fw.Firewall.ApplyAsync("sbx-b", _fw.Uid(2), VmEgressPolicy.Closed, Ct);
        var first = await HostCommand.CheckAsync("nft", "list", "table", "inet", _fw.Options.TableName);
        await _fw.Firewall.ApplyAsync("sbx-a", _fw.Uid(1), new VmEgressPolicy(true, ["203.0.113.0/24"], ["203.0.113.9"]), Ct);

        // The host's own addresses are read afresh on every apply, and the containment tests beside this one add and
        // remove addresses (their stand-in hosts) meanwhile: compare everything but that set's elements.
        Assert.Equal(WithoutHostAddresses(first),
            WithoutHostAddresses(await HostCommand.CheckAsync("nft", "list", "table", "inet", _fw.Options.TableName)));
        var names = await _fw.ObjectNamesAsync();
        Assert.Contains($"chain:uid_{_fw.Uid(1)}", names);
        Assert.Contains($"set:egress_{_fw.Uid(1)}", names);
        Assert.Contains($"chain:uid_{_fw.Uid(2)}", names);
        Assert.Contains("comment \"sandbox sbx-a\"", first, StringComparison.Ordinal);
        Assert.Contains($"meta skuid {_fw.Options.FirstVmUid}-{_fw.Options.LastVmUid} jump vm", first, StringComparison.Ordinal);
        Assert.Equal([_fw.Uid(1), _fw.Uid(2)], await _fw.Firewall.InstalledUidsAsync(Ct));
    }

    [Fact]
    public async Task Remove_and_reconcile_leave_no_rules_of_uids_gone()
    {
        for (var i = 0; i < 4; i++)
            await _fw.Firewall.ApplyAsync($"sbx-{i}", _fw.Uid(i), new VmEgressPolicy(true, DenyOut: ["198.51.100.0/24"]), Ct);

        await _fw.Firewall.RemoveAsync("sbx-0", _fw.Uid(0), Ct);
        // Another sandbox's id does not remove a uid's rules.
        await _fw.Firewall.RemoveAsync("someone-else", _fw.Uid(1), Ct);
        await _fw.Firewall.RemoveAsync("sbx-9", _fw.Uid(9), Ct);
        Assert.Equal([_fw.Uid(1), _fw.Uid(2), _fw.Uid(3)], await _fw.Firewall.InstalledUidsAsync(Ct));
        Assert.DoesNotContain(await _fw.ObjectNamesAsync(), n => n.EndsWith($"_{_fw.Uid(0)}", StringComparison.Ordinal));

        // A fresh instance (a restarted daemon) reconciles to the live set: leftovers go.
        using var restarted = new NftablesFirewall(_fw.Options, NullLogger<NftablesFirewall>.Instance);
        await restarted.ReconcileAsync([("sbx-2", _fw.Uid(2), VmEgressPolicy.Open), ("sbx-5", _fw.Uid(5), VmEgressPolicy.Closed)], Ct);
        var names = await _fw.ObjectNamesAsync();
        var uidObjects = names.Where(n => n.Contains(":uid_", StringComparison.Ordinal) || n.Contains(":egress_", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal([$"chain:uid_{_fw.Uid(2)}", $"chain:uid_{_fw.Uid(5)}"], uidObjects);

        await restarted.RemoveAsync("sbx-2", _fw.Uid(2), Ct);
        await restarted.RemoveAsync("sbx-5", _fw.Uid(5), Ct);
        Assert.DoesNotContain(await _fw.ObjectNamesAsync(), n => n.Contains("uid_", StringComparison.Ordinal) || n.Contains("egress_", StringComparison.Ordinal));

        await restarted.RemoveAllAsync(Ct);
        Assert.Null(await _fw.ListAsync());
        await restarted.RemoveAllAsync(Ct);
    }

    [Fact]
    public async Task Reconcile_contains_a_sandbox_whose_stored_policy_no_longer_validates_and_skips_foreign_uids()
    {
        await _fw.Firewall.ReconcileAsync([
            ("sbx-bad", _fw.Uid(3), new VmEgressPolicy(true, ["fd00::/8"])),
            ("sbx-out", 1000, VmEgressPolicy.Open),
        ], Ct);

        var listing = await HostCommand.CheckAsync("nft", "list", "chain", "inet", _fw.Options.TableName, $"uid_{_fw.Uid(3)}");
        Assert.Contains("reject", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("accept", listing, StringComparison.Ordinal);
        Assert.Equal([_fw.Uid(3)], await _fw.Firewall.InstalledUidsAsync(Ct));
    }

    [Fact]
    public async Task Concurrent_changes_are_serialised_and_none_is_lost()
    {
        await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
            _fw.Firewall.ApplyAsync($"sbx-{i}", _fw.Uid(i), new VmEgressPolicy(i % 2 == 0, DenyOut: [$"198.51.100.{i}"]), Ct)));

        var names = await _fw.ObjectNamesAsync();
        Assert.All(Enumerable.Range(0, 16), i => Assert.Contains($"chain:uid_{_fw.Uid(i)}", names));
        Assert.Equal(16, (await _fw.Firewall.InstalledUidsAsync(Ct)).Count);
    }

    [Fact]
    public async Task An_invalid_policy_or_uid_changes_nothing()
    {
        await _fw.Firewall.ApplyAsync("sbx-a", _fw.Uid(0), VmEgressPolicy.Open, Ct);
        var before = await HostCommand.CheckAsync("nft", "list", "table", "inet", _fw.Options.TableName);

        var e = await Assert.ThrowsAsync<InvalidEgressPolicyException>(() =>
            _fw.Firewall.ApplyAsync("sbx-a", _fw.Uid(0), new VmEgressPolicy(true, ["192.168.1.0/24", "::/0"]), Ct));
        Assert.Equal(2, e.Problems.Count);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            _fw.Firewall.ApplyAsync("sbx-a", _fw.Options.LastVmUid + 1, VmEgressPolicy.Open, Ct));

        Assert.Equal(before, await HostCommand.CheckAsync("nft", "list", "table", "inet", _fw.Options.TableName));
    }

    [Fact]
    public async Task Check_runs_the_real_rules_through_the_kernel_without_installing_them()
    {
        await _fw.Firewall.CheckAsync(Ct);
        Assert.Null(await _fw.ListAsync());
    }

    [Fact]
    public async Task A_missing_nft_says_which_package_to_install()
    {
        await using var fw = new TestFirewall(o => new NftablesFirewallOptions
        {
            TableName = o.TableName, FirstVmUid = o.FirstVmUid, VmUidCount = o.VmUidCount, NftPath = "/nonexistent/nft",
        });
        var e = await Assert.ThrowsAsync<FirewallException>(() => fw.Firewall.ApplyAsync("sbx", fw.Uid(0), VmEgressPolicy.Open, Ct));
        Assert.Contains("nftables", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<FirewallException>(() => fw.Firewall.CheckAsync(Ct));
        Assert.Empty(await fw.Firewall.InstalledUidsAsync(Ct));
    }

    [Fact]
    public void Options_are_checked()
    {
        Assert.Throws<ArgumentException>(() => new NftablesFirewall(new NftablesFirewallOptions { TableName = "Bad-Name" }, NullLogger<NftablesFirewall>.Instance));
        Assert.Throws<ArgumentException>(() => new NftablesFirewall(new NftablesFirewallOptions { FirstVmUid = 0 }, NullLogger<NftablesFirewall>.Instance));
        Assert.Throws<ArgumentException>(() => new NftablesFirewall(new NftablesFirewallOptions { FirstVmUid = int.MaxValue, VmUidCount = 2 }, NullLogger<NftablesFirewall>.Instance));
    }

    /// <summary>The listing with the elements of the host_addresses set blanked.</summary>
    private static string WithoutHostAddresses(string listing) =>
        System.Text.RegularExpressions.Regex.Replace(listing, @"(set host_addresses \{.*?elements = \{)[^}]*\}", "$1 }",
            System.Text.RegularExpressions.RegexOptions.Singleline);
}
