using System.Net.Sockets;

namespace Bough.Client;

/// <summary>
/// Where the daemon is: an <c>http(s)://</c> URL, or <c>unix:/path/to.sock</c> for a daemon
/// listening on a Unix socket (HTTP over the socket; the Host sent is <c>localhost</c>).
/// </summary>
public static class DaemonAddress
{
    /// <summary>Environment variable naming the daemon (same forms as <see cref="Parse"/>).</summary>
    public const string Variable = "BOUGH_URL";

    /// <summary>The scheme of Unix socket addresses.</summary>
    public const string UnixScheme = "unix";

    /// <summary><paramref name="explicitUrl"/> if given, else <c>$BOUGH_URL</c>, else <see cref="BoughClient.DefaultUrl"/>.</summary>
    /// <exception cref="FormatException">Not an http, https or unix address.</exception>
    public static Uri Resolve(string? explicitUrl = null)
    {
        var raw = explicitUrl;
        if (string.IsNullOrWhiteSpace(raw))
            raw = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(raw))
            raw = BoughClient.DefaultUrl;
        return Parse(raw);
    }

    /// <exception cref="FormatException">Not an http, https or unix address.</exception>
    public static Uri Parse(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        if (Uri.TryCreate(raw.Trim(), UriKind.Absolute, out var uri))
        {
            if (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
                return uri;
            if (uri.Scheme == UnixScheme && uri.AbsolutePath.Length > 1)
                return uri;
        }
        throw new FormatException($"invalid daemon address '{raw}': expected e.g. {BoughClient.DefaultUrl}, https://host:7878 or unix:/run/bough/api.sock");
    }

    public static bool IsUnixSocket(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.Scheme == UnixScheme;
    }

    /// <summary>The socket path of a <c>unix:</c> address.</summary>
    public static string SocketPath(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return Uri.UnescapeDataString(address.AbsolutePath);
    }

    /// <summary>A handler whose connections go to <paramref name="socketPath"/> whatever the request's host.</summary>
    internal static SocketsHttpHandler UnixSocketHandler(string socketPath) => new()
    {
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
