using System.Diagnostics;

namespace Bough.TestSupport;

/// <summary>
/// A stand-in for another machine, without leaving this one: a fresh network namespace joined to
/// the host by a veth pair, holding the given IPv4 addresses (each a /32 routed from the host
/// through the pair), with a tiny HTTP server on every address that answers with
/// <see cref="Token"/> (so a test knows it reached this server and not something else).
/// Everything (namespace, links, routes, server) goes at dispose, even after a failure half way.
/// Needs root, iproute2 and python3.
/// </summary>
public sealed class NetnsHost : IAsyncDisposable
{
    private const string Server = """
        import socket, sys, threading
        port, token = int(sys.argv[1]), sys.argv[2].encode()
        def answer(c):
            try:
                c.settimeout(5)
                c.recv(4096)
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(token), token))
            except OSError:
                pass
            finally:
                c.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        print("ready", flush=True)
        while True:
            c, _ = s.accept()
            threading.Thread(target=answer, args=(c,), daemon=True).start()
        """;

    private readonly string _hostLink;
    private Process? _server;

    private NetnsHost(string name, string hostLink, IReadOnlyList<string> addresses, int port)
    {
        Name = name;
        _hostLink = hostLink;
        Addresses = addresses;
        Port = port;
    }

    /// <summary>The namespace's name (<c>ip netns exec NAME ...</c>).</summary>
    public string Name { get; }

    /// <summary>The addresses the namespace holds.</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>The TCP port the HTTP server listens on, on every address.</summary>
    public int Port { get; }

    /// <summary>The body the server answers every request with.</summary>
    public string Token { get; } = "netns-" + Guid.NewGuid().ToString("N");

    /// <summary>Creates the namespace, its link and routes, and starts the server.</summary>
    /// <param name="addresses">IPv4 addresses for the namespace, none of them this host's own or used by another test at the same time.</param>
    public static async Task<NetnsHost> StartAsync(IReadOnlyList<string> addresses, int port = 8080)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var host = new NetnsHost($"bough-t{id}", $"bh{id}", addresses, port);
        try
        {
            await host.SetUpAsync($"bp{id}");
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    private async Task SetUpAsync(string peerLink)
    {
        await HostCommand.CheckAsync("ip", "netns", "add", Name);
        await HostCommand.CheckAsync("ip", "link", "add", _hostLink, "type", "veth", "peer", "name", peerLink, "netns", Name);
        await HostCommand.CheckAsync("ip", "link", "set", _hostLink, "up");
        await HostCommand.CheckAsync("ip", "-n", Name, "link", "set", "lo", "up");
        await HostCommand.CheckAsync("ip", "-n", Name, "link", "set", peerLink, "up");
        foreach (var address in Addresses)
        {
            await HostCommand.CheckAsync("ip", "-n", Name, "addr", "add", $"{address}/32", "dev", peerLink);
            // replace, not add: a route a crashed run left behind must not fail the next one.
            await HostCommand.CheckAsync("ip", "route", "replace", $"{address}/32", "dev", _hostLink);
        }
        // Replies go back through the pair; the host answers ARP for its own source address on any link.
        await HostCommand.CheckAsync("ip", "-n", Name, "route", "add", "default", "dev", peerLink);

        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var a in new[] { "netns", "exec", Name, HostCommand.Python3, "-c", Server, Port.ToString(System.Globalization.CultureInfo.InvariantCulture), Token })
            psi.ArgumentList.Add(a);
        _server = Process.Start(psi)!;
        var ready = _server.StandardOutput.ReadLineAsync();
        if (await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(10))) != ready || await ready != "ready")
            throw new InvalidOperationException($"the test server in {Name} did not start: {await ReadErrorAsync(_server)}");
    }

    private static async Task<string> ReadErrorAsync(Process p)
    {
        if (!p.HasExited)
            return "(still starting)";
        return await p.StandardError.ReadToEndAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is { } server)
        {
            try
            {
                if (!server.HasExited)
                    server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync();
            }
            catch (InvalidOperationException) { }
            server.Dispose();
        }
        // Deleting the namespace deletes the peer, which deletes the host end and its routes; the
        // explicit link delete covers a failure before the peer moved into the namespace.
        await HostCommand.RunAsync("ip", ["netns", "del", Name]);
        await HostCommand.RunAsync("ip", ["link", "del", _hostLink]);
    }
}
