using System.Globalization;
using System.Net;
using Bough.E2b.ControlPlane;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;

namespace Bough.Server.PortRouting;

/// <summary>A request's Host named a sandbox port: <c>&lt;Port&gt;-&lt;SandboxId&gt;.&lt;domain&gt;</c>.</summary>
internal readonly record struct PortRoute(int Port, string SandboxId);

/// <summary>
/// The DNS suffix under which sandbox ports are reachable (<c>--domain</c>), and the parser of the
/// Host names under it. Without <c>--domain</c> it is <c>localhost</c>: every <c>*.localhost</c> name
/// resolves to loopback (RFC 6761; glibc, systemd-resolved and browsers do so), so
/// <c>http://8080-&lt;id&gt;.localhost:7878/</c> works on the daemon's own host with no DNS set up.
/// A configured domain may carry a port (<c>sb.example.com:8443</c>) for clients to append; matching a
/// Host looks only at the name, since the request reached this daemon whatever port it used.
/// </summary>
internal sealed class SandboxDomain : ISandboxDomain
{
    private const string DefaultName = "localhost";
    private readonly string? _configured;
    private readonly string _suffix;
    private readonly IServer _server;

    public SandboxDomain(ServerOptions options, IServer server)
    {
        ArgumentNullException.ThrowIfNull(options);
        _configured = Normalise(options.Domain);
        _suffix = "." + (_configured is null ? DefaultName : NameOf(_configured));
        _server = server;
    }

    /// <summary>
    /// The configured domain; else <c>localhost:PORT</c> with the loopback port the request came in on (or, over a
    /// Unix socket, the first loopback TCP listener); null when the daemon has no TCP listener to route through.
    /// </summary>
    public string? DomainFor(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_configured is not null) return _configured;
        var local = context.Connection.LocalIpAddress;
        if (local is not null && IPAddress.IsLoopback(local) && context.Connection.LocalPort > 0)
            return string.Create(CultureInfo.InvariantCulture, $"{DefaultName}:{context.Connection.LocalPort}");
        var addresses = _server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip))
                return string.Create(CultureInfo.InvariantCulture, $"{DefaultName}:{uri.Port}");
        }
        return null;
    }

    /// <summary>True when <paramref name="host"/> is <c>&lt;port&gt;-&lt;sandbox id&gt;.&lt;domain&gt;</c> (any case, an optional final dot).</summary>
    public bool TryMatch(HostString host, out PortRoute route)
    {
        route = default;
        if (!host.HasValue) return false;
        var name = host.Host.TrimEnd('.');
        if (name.Length <= _suffix.Length || !name.EndsWith(_suffix, StringComparison.OrdinalIgnoreCase)) return false;
        var label = name[..^_suffix.Length];
        var dash = label.IndexOf('-', StringComparison.Ordinal);
        if (dash is < 1 or > 5 || label.Contains('.', StringComparison.Ordinal)) return false;
        if (!int.TryParse(label.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            return false;
        var id = label[(dash + 1)..].ToLowerInvariant(); // DNS names are case-insensitive; ids are lower case
        if (id.Length == 0) return false;
        route = new PortRoute(port, id);
        return true;
    }

    /// <summary>Checks a <c>--domain</c> value: DNS labels, optionally <c>:port</c>; no scheme, path or wildcard.</summary>
    /// <exception cref="ServerConfigurationException">It is not that.</exception>
    public static string? Normalise(string? domain)
    {
        if (string.IsNullOrWhiteSpace(domain)) return null;
        var value = domain.Trim().TrimEnd('.').ToLowerInvariant();
        var name = NameOf(value);
        var portText = value.Length > name.Length ? value[(name.Length + 1)..] : null;
        var labelsOk = name.Length is > 0 and <= 253 && name.Split('.').All(l =>
            l.Length is > 0 and <= 63 && !l.StartsWith('-') && !l.EndsWith('-') && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
        var portOk = portText is null || (int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 1 and <= 65535);
        if (!labelsOk || !portOk)
            throw new ServerConfigurationException(
                $"--domain '{domain}' is not a DNS name with an optional port (e.g. sandboxes.example.com or localhost:7878); " +
                "sandbox ports are then reachable as <port>-<sandbox id>.<domain>");
        return value;
    }

    private static string NameOf(string domain)
    {
        var colon = domain.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? domain : domain[..colon];
    }
}
