using System.Net;

namespace Bough.Server.Http;

/// <summary>One parsed <c>--listen</c> entry.</summary>
/// <param name="Original">As the operator wrote it (for messages).</param>
/// <param name="Address">The IP to bind; null for <c>localhost</c> (both loopback families) or a Unix socket.</param>
/// <param name="SocketPath">Absolute path of a Unix socket listener, else null.</param>
internal sealed record ListenEndpoint(string Original, IPAddress? Address, int Port, bool Tls, string? SocketPath)
{
    public bool IsUnixSocket => SocketPath is not null;

    /// <summary>Loopback (or a Unix socket): reachable only from this host.</summary>
    public bool IsLocal => IsUnixSocket || Address is null || IPAddress.IsLoopback(Address);

    /// <summary>Parses <c>http://IP:PORT</c>, <c>https://IP:PORT</c>, <c>http(s)://localhost:PORT</c> or <c>unix:/path</c>.</summary>
    /// <exception cref="ServerConfigurationException">Not one of those forms.</exception>
    public static ListenEndpoint Parse(string entry)
    {
        var text = entry.Trim();
        foreach (var prefix in new[] { "unix:", "http://unix:" })
        {
            if (!text.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                continue;
            var path = text[prefix.Length..];
            if (!Path.IsPathRooted(path) || path.EndsWith('/'))
                throw new ServerConfigurationException($"--listen {entry}: a Unix socket needs an absolute file path, e.g. unix:/run/bough/api.sock");
            return new ListenEndpoint(entry, null, 0, false, Path.GetFullPath(path));
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ServerConfigurationException(
                $"--listen {entry}: expected http://IP:PORT, https://IP:PORT or unix:/path (e.g. {ServerOptions.DefaultListen})");
        if (uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.UserInfo))
            throw new ServerConfigurationException($"--listen {entry}: give only scheme, address and port (no path, query or user)");

        var tls = uri.Scheme == Uri.UriSchemeHttps;
        if (uri.IsLoopback && uri.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (uri.Port == 0)
                throw new ServerConfigurationException($"--listen {entry}: localhost needs a fixed port; use 127.0.0.1:0 for a port the system chooses");
            return new ListenEndpoint(entry, null, uri.Port, tls, null);
        }
        if (!IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            throw new ServerConfigurationException(
                $"--listen {entry}: '{uri.Host}' is not an IP address; listen on an address (0.0.0.0 for all IPv4, [::] for all) rather than a host name");
        return new ListenEndpoint(entry, ip, uri.Port, tls, null);
    }
}
