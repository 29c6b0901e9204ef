using System.Text.Json;
using Bough.Network;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Network.Tests;

/// <summary>
/// A firewall of its own for one test: its own table and its own small uid range, so tests in
/// parallel never see each other's rules. The table goes at dispose, even after a failure.
/// </summary>
internal sealed class TestFirewall : IAsyncDisposable
{
    public TestFirewall(Func<NftablesFirewallOptions, NftablesFirewallOptions>? adjust = null)
    {
        var options = new NftablesFirewallOptions
        {
            TableName = "bought_" + Guid.NewGuid().ToString("N")[..12],
            FirstVmUid = 1_950_000_000 + Random.Shared.Next(0, 1_000_000) * 16,
            VmUidCount = 16,
        };
        Options = adjust is null ? options : adjust(options);
        Firewall = new NftablesFirewall(Options, NullLogger<NftablesFirewall>.Instance);
    }

    public NftablesFirewallOptions Options { get; }
    public NftablesFirewall Firewall { get; }

    /// <summary>The n-th uid of this test's range.</summary>
    public int Uid(int n) => Options.FirstVmUid + n;

    /// <summary>The table as nft lists it in JSON; null when it does not exist.</summary>
    public async Task<JsonDocument?> ListAsync()
    {
        var (code, stdout, _) = await HostCommand.RunAsync("nft", ["-j", "list", "table", "inet", Options.TableName]);
        return code == 0 ? JsonDocument.Parse(stdout) : null;
    }

    /// <summary>Names of the chains and sets in the table.</summary>
    public async Task<IReadOnlyList<string>> ObjectNamesAsync()
    {
        using var doc = await ListAsync();
        if (doc is null)
            return [];
        return doc.RootElement.GetProperty("nftables").EnumerateArray()
            .SelectMany(e => e.EnumerateObject())
            .Where(p => p.Name is "chain" or "set")
            .Select(p => $"{p.Name}:{p.Value.GetProperty("name").GetString()}")
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await HostCommand.RunAsync("nft", ["delete", "table", "inet", Options.TableName]);
        Firewall.Dispose();
    }
}
