using Bough.Server.Http;

namespace Bough.Server;

/// <summary>How the HTTP front end is exposed, and where its API token lives.</summary>
public sealed class ServerOptions
{
    /// <summary>The listen address when <see cref="Listen"/> is empty.</summary>
    public const string DefaultListen = "http://127.0.0.1:7878";

    /// <summary>
    /// Where to listen, one entry per listener: <c>http://IP:PORT</c> on a loopback address,
    /// <c>https://IP:PORT</c> (needs <see cref="TlsCertificatePath"/> and <see cref="TlsKeyPath"/>),
    /// or <c>unix:/path/to.sock</c> (created mode 0600). Plain HTTP on a non-loopback address is
    /// refused unless <see cref="InsecurePlaintext"/>. Port 0 lets the OS choose (tests).
    /// Empty means <see cref="DefaultListen"/>.
    /// </summary>
    public IList<string> Listen { get; } = [];

    /// <summary>PEM certificate (chain) for <c>https://</c> listeners.</summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>PEM private key matching <see cref="TlsCertificatePath"/>.</summary>
    public string? TlsKeyPath { get; set; }

    /// <summary>
    /// Allows plain HTTP on a non-loopback address, for a network something else already
    /// encrypts (a VPN, a TLS-terminating proxy on the same host). The token then crosses that
    /// network in clear text.
    /// </summary>
    public bool InsecurePlaintext { get; set; }

    /// <summary>
    /// The DNS name under which sandbox ports are served as <c>&lt;port&gt;-&lt;sandbox id&gt;.&lt;domain&gt;</c>
    /// (what E2B's <c>sandbox.getHost(port)</c> returns), optionally with <c>:port</c> for clients to append.
    /// Point a wildcard DNS record (<c>*.domain</c>) at the daemon. Null: <c>localhost</c> with the port the
    /// daemon listens on, since every <c>*.localhost</c> name is loopback.
    /// </summary>
    public string? Domain { get; set; }

    /// <summary>
    /// The API token file (<see cref="Security.ApiTokenFile.PathIn"/> of the data directory).
    /// Written on first start; every request but <c>GET /healthz</c> must present its token.
    /// </summary>
    public required string TokenFile { get; init; }

    /// <summary>
    /// Checks the listen addresses and TLS files without binding anything, so a daemon can
    /// refuse a bad configuration before minutes of host preparation.
    /// </summary>
    /// <returns>Warnings to show loudly (plain HTTP off loopback under <see cref="InsecurePlaintext"/>).</returns>
    /// <exception cref="ServerConfigurationException">What is wrong and how to fix it.</exception>
    public IReadOnlyList<string> Validate()
    {
        PortRouting.SandboxDomain.Normalise(Domain);
        return ListenPlan.Create(this).Warnings;
    }
}
