using System.Net;
using System.Net.Sockets;

namespace Bough.Vmm;

/// <summary>
/// Picks free loopback ports by letting the kernel choose (bind to port 0). Inherently racy —
/// another process may take the port before QEMU binds it — so the launcher retries on a
/// host-forwarding failure.
/// </summary>
internal static class HostPortAllocator
{
    public static IReadOnlyList<PortForward> Resolve(IReadOnlyList<PortForward> requested)
    {
        var listeners = new List<TcpListener>();
        try
        {
            var resolved = new List<PortForward>(requested.Count);
            foreach (var p in requested)
            {
                if (p.HostPort != 0)
                {
                    resolved.Add(p);
                    continue;
                }
                // Keep every probe socket open until all are chosen so one spec never gets the same port twice.
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
                resolved.Add(p with { HostPort = ((IPEndPoint)listener.LocalEndpoint).Port });
            }
            return resolved;
        }
        finally
        {
            foreach (var l in listeners) l.Stop();
        }
    }
}
