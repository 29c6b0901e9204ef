using System.Diagnostics;
using System.Net;
using Yarp.ReverseProxy.Forwarder;

namespace Bough.Server.PortRouting;

/// <summary>
/// The one HTTP client port routing forwards with (connections to the VMs' loopback forwards are pooled
/// across requests). Configured as YARP recommends for a forwarder: no proxy, redirects, cookies or
/// decompression of its own, so the exchange reaches each side as the other sent it.
/// </summary>
internal sealed class ForwarderClient : IDisposable
{
    public HttpMessageInvoker Invoker { get; } = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = TimeSpan.FromSeconds(10),
    });

    public void Dispose() => Invoker.Dispose();
}
