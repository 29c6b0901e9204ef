using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Bough.Network;

namespace Bough.Network.Tests;

/// <summary>
/// What a process running as a VM uid can reach, with the real kernel firewall in force: servers
/// on this host (loopback, ::1, its own addresses) and stand-in hosts in network namespaces the
/// tests create ("metadata" on 169.254.169.254, a "LAN" host on 10.x, "public" hosts on the
/// documentation range 203.0.113.0/24). Every refusal is checked against a control that reaches
/// the same server as root, so a test fails when the server is simply not there. No traffic
/// leaves this machine.
/// </summary>
// xunit 2 disposes a test class through IAsyncLifetime (it ignores IAsyncDisposable), which is how the fields go.
#pragma warning disable CA1001
public sealed class ContainmentTests : IAsyncLifetime
#pragma warning restore CA1001
{
    private readonly TestFirewall _fw = new();
    private readonly List<IAsyncDisposable> _cleanup = [];
    // Addresses differ per test so a leftover of a crashed run never collides.
    private readonly int _octet = Random.Shared.Next(2, 120);
    private static CancellationToken Ct => CancellationToken.None;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            await _cleanup[i].DisposeAsync();
        await _fw.DisposeAsync();
    }

    private string Public(int n) => $"203.0.113.{_octet + n}";

    private async Task<T> KeepAsync<T>(Task<T> starting) where T : IAsyncDisposable
    {
        var item = await starting;
        _cleanup.Add(item);
        return item;
    }

    private TestHttpServer Serve(IPAddress address)
    {
        var server = new TestHttpServer(address);
        _cleanup.Add(server);
        return server;
    }

    private static async Task AssertReachableAsync(int? uid, string host, int port, string token) =>
        Assert.True(await UidProbe.GetAsync(uid, host, port) == token, $"{(uid is null ? "root" : $"uid {uid}")} should reach {host}:{port}");

    private static async Task AssertRefusedAsync(int uid, string host, int port, string token)
    {
        await AssertReachableAsync(null, host, port, token);
        Assert.True(await UidProbe.GetAsync(uid, host, port) is null, $"uid {uid} must not reach {host}:{port}");
    }

    [Fact]
    public async Task A_vm_uid_reaches_nothing_on_this_host_while_root_reaches_it_all()
    {
        var before = await KeepAsync(HostExtraAddress.AddAsync($"198.51.100.{_octet}"));
        var servers = new List<(string Host, TestHttpServer Server)>
        {
            ("127.0.0.1", Serve(IPAddress.Loopback)),
            ("::1", Serve(IPAddress.IPv6Loopback)),
            ("0.0.0.0", Serve(IPAddress.Any)),
            (before.Address, Serve(IPAddress.Parse(before.Address))),
        };
        if (PrimaryHostAddress() is { } primary)
            servers.Add((primary.ToString(), Serve(primary)));

        await _fw.Firewall.ApplyAsync("sbx-host", _fw.Uid(0), VmEgressPolicy.Open, Ct);
        // An address the host gains after the rules were built is refused too (the kernel's local lookup).
        var after = await KeepAsync(HostExtraAddress.AddAsync($"198.51.100.{_octet + 1}"));
        servers.Add((after.Address, Serve(IPAddress.Parse(after.Address))));

        foreach (var (host, server) in servers)
            await AssertRefusedAsync(_fw.Uid(0), host, server.Port, server.Token);
    }

    [Fact]
    public async Task Metadata_and_lan_hosts_are_refused_and_a_public_host_is_reached()
    {
        var lan = $"10.77.{_octet}.10";
        var net = await KeepAsync(NetnsHost.StartAsync(["169.254.169.254", lan, Public(0)]));
        await _fw.Firewall.ApplyAsync("sbx-net", _fw.Uid(0), VmEgressPolicy.Open, Ct);

        await AssertRefusedAsync(_fw.Uid(0), "169.254.169.254", net.Port, net.Token);
        await AssertRefusedAsync(_fw.Uid(0), lan, net.Port, net.Token);
        await AssertReachableAsync(_fw.Uid(0), Public(0), net.Port, net.Token);
    }

    [Fact]
    public async Task Internet_off_reaches_nothing_and_a_policy_change_takes_effect_on_the_same_uid()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0)]));

        await _fw.Firewall.ApplyAsync("sbx-off", _fw.Uid(0), VmEgressPolicy.Closed, Ct);
        await AssertRefusedAsync(_fw.Uid(0), Public(0), net.Port, net.Token);

        await _fw.Firewall.ApplyAsync("sbx-off", _fw.Uid(0), VmEgressPolicy.Open, Ct);
        await AssertReachableAsync(_fw.Uid(0), Public(0), net.Port, net.Token);

        await _fw.Firewall.ApplyAsync("sbx-off", _fw.Uid(0), VmEgressPolicy.Closed, Ct);
        await AssertRefusedAsync(_fw.Uid(0), Public(0), net.Port, net.Token);
    }

    [Fact]
    public async Task Allow_and_deny_lists_decide_which_public_hosts_are_reached()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0), Public(1)]));
        var (a, b, port, token) = (Public(0), Public(1), net.Port, net.Token);

        await _fw.Firewall.ApplyAsync("sbx-allow", _fw.Uid(0), new VmEgressPolicy(true, AllowOut: [a]), Ct);
        await _fw.Firewall.ApplyAsync("sbx-deny", _fw.Uid(1), new VmEgressPolicy(true, DenyOut: [b]), Ct);
        await _fw.Firewall.ApplyAsync("sbx-hole", _fw.Uid(2), new VmEgressPolicy(true, ["203.0.113.0/24"], [$"{b}/32"]), Ct);
        await _fw.Firewall.ApplyAsync("sbx-e2b", _fw.Uid(3), new VmEgressPolicy(true, [a], ["0.0.0.0/0"]), Ct);
        await _fw.Firewall.ApplyAsync("sbx-none", _fw.Uid(4), new VmEgressPolicy(true, ["198.51.100.0/24"]), Ct);
        // Allowing everything does not open what is never reachable.
        await _fw.Firewall.ApplyAsync("sbx-all", _fw.Uid(5), new VmEgressPolicy(true, ["0.0.0.0/0"]), Ct);
        var loopback = Serve(IPAddress.Loopback);

        for (var uid = 0; uid <= 3; uid++)
        {
            await AssertReachableAsync(_fw.Uid(uid), a, port, token);
            await AssertRefusedAsync(_fw.Uid(uid), b, port, token);
        }
        await AssertRefusedAsync(_fw.Uid(4), a, port, token);
        await AssertReachableAsync(_fw.Uid(5), b, port, token);
        await AssertRefusedAsync(_fw.Uid(5), "127.0.0.1", loopback.Port, loopback.Token);
    }

    [Fact]
    public async Task Uids_without_rules_are_cut_off_removed_ones_too_and_uids_outside_the_range_are_untouched()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0)]));
        await _fw.Firewall.ApplyAsync("sbx-a", _fw.Uid(0), VmEgressPolicy.Open, Ct);
        await _fw.Firewall.ApplyAsync("sbx-b", _fw.Uid(1), VmEgressPolicy.Open, Ct);

        await AssertRefusedAsync(_fw.Uid(2), Public(0), net.Port, net.Token);
        await AssertReachableAsync(_fw.Uid(1), Public(0), net.Port, net.Token);
        await AssertReachableAsync(_fw.Options.LastVmUid + 1, Public(0), net.Port, net.Token);

        await _fw.Firewall.RemoveAsync("sbx-b", _fw.Uid(1), Ct);
        await AssertRefusedAsync(_fw.Uid(1), Public(0), net.Port, net.Token);

        // Reconcile (a restart) keeps only the live ones.
        await _fw.Firewall.ReconcileAsync([("sbx-c", _fw.Uid(2), VmEgressPolicy.Open)], Ct);
        await AssertRefusedAsync(_fw.Uid(0), Public(0), net.Port, net.Token);
        await AssertReachableAsync(_fw.Uid(2), Public(0), net.Port, net.Token);

        // Without the table nothing is filtered any more: the refusals above were the firewall's.
        await _fw.Firewall.RemoveAllAsync(Ct);
        await AssertReachableAsync(_fw.Uid(0), Public(0), net.Port, net.Token);
    }

    [Fact]
    public async Task Dns_goes_to_the_hosts_resolvers_on_port_53_only_and_only_with_internet()
    {
        var (resolver, other) = ($"10.77.{_octet}.53", $"10.77.{_octet}.54");
        var dns = await KeepAsync(NetnsHost.StartAsync([resolver, other], port: 53));
        var web = await KeepAsync(NetnsHost.StartAsync([$"10.77.{_octet}.80"], port: 8080));
        using var dir = new TempDir("resolv");
        File.WriteAllText(dir.Combine("resolv.conf"), $"nameserver {resolver}\nnameserver fd00::53\n");
        await using var fw = new TestFirewall(o => new NftablesFirewallOptions
        {
            TableName = o.TableName, FirstVmUid = o.FirstVmUid, VmUidCount = o.VmUidCount, ResolvConfPath = dir.Combine("resolv.conf"),
        });

        await fw.Firewall.ApplyAsync("sbx-on", fw.Uid(0), new VmEgressPolicy(true, ["203.0.113.1"], [$"{resolver}/32"]), Ct);
        await fw.Firewall.ApplyAsync("sbx-off", fw.Uid(1), VmEgressPolicy.Closed, Ct);

        await AssertReachableAsync(fw.Uid(0), resolver, 53, dns.Token);
        await AssertRefusedAsync(fw.Uid(0), other, 53, dns.Token);
        await AssertRefusedAsync(fw.Uid(0), $"10.77.{_octet}.80", 8080, web.Token);
        await AssertRefusedAsync(fw.Uid(1), resolver, 53, dns.Token);
    }

    [Fact]
    public async Task A_change_nft_rejects_leaves_the_previous_rules_in_force()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0)]));
        using var dir = new TempDir("nftwrap");
        var marker = dir.Combine("break");
        // The real nft, fed the firewall's real script with one bad line appended once the marker
        // exists: the kernel gets a transaction that fails at its very end.
        var wrapper = dir.Combine("nft");
        File.WriteAllText(wrapper, $"#!/bin/sh\nif [ -e '{marker}' ]; then {{ cat; echo 'this is not nft'; }} | nft \"$@\"; else exec nft \"$@\"; fi\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        await using var fw = new TestFirewall(o => new NftablesFirewallOptions
        {
            TableName = o.TableName, FirstVmUid = o.FirstVmUid, VmUidCount = o.VmUidCount, NftPath = wrapper,
        });
        await fw.Firewall.ApplyAsync("sbx-a", fw.Uid(0), VmEgressPolicy.Open, Ct);
        await AssertReachableAsync(fw.Uid(0), Public(0), net.Port, net.Token);
        var before = await HostCommand.CheckAsync("nft", "list", "table", "inet", fw.Options.TableName);

        File.WriteAllText(marker, "");
        var e = await Assert.ThrowsAsync<FirewallException>(() => fw.Firewall.ApplyAsync("sbx-a", fw.Uid(0), VmEgressPolicy.Closed, Ct));
        Assert.Contains("this is not nft", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<FirewallException>(() => fw.Firewall.ApplyAsync("sbx-b", fw.Uid(1), VmEgressPolicy.Open, Ct));

        Assert.Equal(before, await HostCommand.CheckAsync("nft", "list", "table", "inet", fw.Options.TableName));
        await AssertReachableAsync(fw.Uid(0), Public(0), net.Port, net.Token);
        Assert.Equal([fw.Uid(0)], await fw.Firewall.InstalledUidsAsync(Ct));

        // Once nft works again, the next change builds from what was really installed (uid 1 never was).
        File.Delete(marker);
        await fw.Firewall.ApplyAsync("sbx-a", fw.Uid(0), VmEgressPolicy.Closed, Ct);
        await AssertRefusedAsync(fw.Uid(0), Public(0), net.Port, net.Token);
        Assert.Equal([fw.Uid(0)], await fw.Firewall.InstalledUidsAsync(Ct));
    }

    [Fact]
    public async Task A_policy_change_cuts_connections_already_open()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0)]));
        using var dir = new TempDir("cut");
        await _fw.Firewall.ApplyAsync("sbx-cut", _fw.Uid(0), VmEgressPolicy.Open, Ct);
        await _fw.Firewall.ApplyAsync("sbx-keep", _fw.Uid(1), VmEgressPolicy.Open, Ct);
        var cut = HeldConnection.Open(_fw.Uid(0), Public(0), net.Port, dir.Combine("go"));
        var kept = HeldConnection.Open(_fw.Uid(1), Public(0), net.Port, dir.Combine("go"));
        _cleanup.Add(cut);
        _cleanup.Add(kept);
        await cut.ConnectedAsync();
        await kept.ConnectedAsync();

        await _fw.Firewall.ApplyAsync("sbx-cut", _fw.Uid(0), VmEgressPolicy.Closed, Ct);
        File.WriteAllText(dir.Combine("go"), "");

        Assert.Null(await cut.ResultAsync());
        Assert.Equal(net.Token, await kept.ResultAsync());
    }

    /// <summary>A non-loopback IPv4 address of this host's own interfaces, if it has one.</summary>
    private static IPAddress? PrimaryHostAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a) && !a.ToString().StartsWith("198.51.100.", StringComparison.Ordinal));
}
