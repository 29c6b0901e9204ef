namespace Bough.TestSupport;

/// <summary>
/// An extra address of this host itself, on a link the test creates and removes (a veth pair left
/// in the host's namespace: the dummy link type is not in every kernel): a host address outside
/// every private range (use a documentation range), which only a firewall that knows the host's
/// own addresses can refuse.
/// </summary>
public sealed class HostExtraAddress : IAsyncDisposable
{
    private HostExtraAddress(string link, string address)
    {
        Link = link;
        Address = address;
    }

    public string Link { get; }
    public string Address { get; }

    public static async Task<HostExtraAddress> AddAsync(string address)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var added = new HostExtraAddress("bx" + id, address);
        try
        {
            await HostCommand.CheckAsync("ip", "link", "add", added.Link, "type", "veth", "peer", "name", "by" + id);
            await HostCommand.CheckAsync("ip", "addr", "add", $"{address}/32", "dev", added.Link);
            await HostCommand.CheckAsync("ip", "link", "set", added.Link, "up");
            await HostCommand.CheckAsync("ip", "link", "set", "by" + id, "up");
            return added;
        }
        catch
        {
            await added.DisposeAsync();
            throw;
        }
    }

    /// <summary>Deleting one end deletes the pair and the address.</summary>
    public async ValueTask DisposeAsync() => await HostCommand.RunAsync("ip", ["link", "del", Link]);
}
