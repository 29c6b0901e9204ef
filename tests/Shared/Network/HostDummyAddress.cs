namespace Bough.TestSupport;

/// <summary>
/// An extra address of this host itself, on a dummy link the test creates and removes: a host
/// address outside every private range (a documentation range), which only a firewall that
/// knows the host's own addresses can refuse.
/// </summary>
public sealed class HostDummyAddress : IAsyncDisposable
{
    private HostDummyAddress(string link, string address)
    {
        Link = link;
        Address = address;
    }

    public string Link { get; }
    public string Address { get; }

    public static async Task<HostDummyAddress> AddAsync(string address)
    {
        var added = new HostDummyAddress("bd" + Guid.NewGuid().ToString("N")[..8], address);
        try
        {
            await HostCommand.CheckAsync("ip", "link", "add", added.Link, "type", "dummy");
            await HostCommand.CheckAsync("ip", "addr", "add", $"{address}/32", "dev", added.Link);
            await HostCommand.CheckAsync("ip", "link", "set", added.Link, "up");
            return added;
        }
        catch
        {
            await added.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync() => await HostCommand.RunAsync("ip", ["link", "del", Link]);
}
