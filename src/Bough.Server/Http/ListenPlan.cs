using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Bough.Server.Http;

/// <summary>
/// The validated listeners of a daemon: which addresses, which need TLS, the certificate, and
/// the rule that the API (whose token is a bearer secret) never goes over plain HTTP off this
/// host unless the operator says so explicitly.
/// </summary>
internal sealed class ListenPlan
{
    /// <summary>Mode of Unix socket listeners: connecting needs write permission, so owner only.</summary>
    public const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private ListenPlan(IReadOnlyList<ListenEndpoint> endpoints, X509Certificate2? certificate, IReadOnlyList<string> warnings)
    {
        Endpoints = endpoints;
        Certificate = certificate;
        Warnings = warnings;
    }

    public IReadOnlyList<ListenEndpoint> Endpoints { get; }

    /// <summary>Loaded when any listener is https.</summary>
    public X509Certificate2? Certificate { get; }

    public IReadOnlyList<string> Warnings { get; }

    /// <exception cref="ServerConfigurationException">What is wrong and how to fix it.</exception>
    public static ListenPlan Create(ServerOptions options)
    {
        var entries = options.Listen.Count == 0 ? [ServerOptions.DefaultListen] : options.Listen;
        var endpoints = entries.Select(ListenEndpoint.Parse).ToList();
        var warnings = new List<string>();

        if (string.IsNullOrEmpty(options.TlsCertificatePath) != string.IsNullOrEmpty(options.TlsKeyPath))
            throw new ServerConfigurationException("--tls-cert and --tls-key go together: give both PEM files (certificate and its private key)");
        var haveTls = !string.IsNullOrEmpty(options.TlsCertificatePath);

        foreach (var e in endpoints)
        {
            if (e.Tls && !haveTls)
                throw new ServerConfigurationException(
                    $"--listen {e.Original} is HTTPS but no certificate was given: add --tls-cert CERT.pem --tls-key KEY.pem");
            if (e.Tls || e.IsLocal)
                continue;
            var plain =
                $"--listen {e.Original} serves plain HTTP on an address other machines can reach: the API token, commands, " +
                "files and env would cross the network unencrypted";
            if (!options.InsecurePlaintext)
                throw new ServerConfigurationException(
                    $"refusing to start: {plain}. Use https://{HostPort(e)} with --tls-cert and --tls-key (PEM), " +
                    "or keep the API on loopback or a Unix socket; --insecure-plaintext allows it anyway when the network is encrypted by other means (VPN, a TLS proxy)");
            warnings.Add($"{plain} (--insecure-plaintext)");
        }

        X509Certificate2? certificate = null;
        if (haveTls)
        {
            if (!endpoints.Any(e => e.Tls))
                warnings.Add("--tls-cert/--tls-key were given but no listener is https://; they are not used");
            else
                certificate = LoadCertificate(options.TlsCertificatePath!, options.TlsKeyPath!, warnings);
        }
        return new ListenPlan(endpoints, certificate, warnings);
    }

    /// <summary>Adds every listener to Kestrel.</summary>
    public void Apply(KestrelServerOptions kestrel)
    {
        foreach (var e in Endpoints)
        {
            if (e.SocketPath is { } path)
                kestrel.ListenUnixSocket(path);
            else if (e.Address is null)
                kestrel.ListenLocalhost(e.Port, l => UseTls(l, e));
            else
                kestrel.Listen(e.Address, e.Port, l => UseTls(l, e));
        }
    }

    /// <summary>
    /// Clears what a crashed daemon left at a Unix socket path (binding would fail with "address
    /// in use"), but never a socket someone still answers on, nor anything that is not empty.
    /// </summary>
    /// <exception cref="ServerConfigurationException">The path is in use or is not a stale socket.</exception>
    public void RemoveStaleSockets()
    {
        foreach (var path in Endpoints.Select(e => e.SocketPath).OfType<string>())
        {
            if (!File.Exists(path))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                continue;
            }
            using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    probe.Connect(new UnixDomainSocketEndPoint(path));
                    throw new ServerConfigurationException($"--listen unix:{path}: another process is listening on that socket (a running daemon?)");
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
                {
                    // Nobody listens: a stale socket left by a daemon that did not shut down.
                }
            }
            if (new FileInfo(path).Length != 0)
                throw new ServerConfigurationException($"--listen unix:{path}: that path is an existing file, not a socket");
            File.Delete(path);
        }
    }

    /// <summary>Sets each Unix socket to <see cref="SocketMode"/> once bound (its mode at bind time comes from the umask).</summary>
    public void RestrictSockets()
    {
        if (OperatingSystem.IsWindows())
            return;
        foreach (var path in Endpoints.Select(e => e.SocketPath).OfType<string>())
            File.SetUnixFileMode(path, SocketMode);
    }

    public void DeleteSockets()
    {
        foreach (var path in Endpoints.Select(e => e.SocketPath).OfType<string>())
        {
            try { File.Delete(path); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private void UseTls(ListenOptions listen, ListenEndpoint e)
    {
        if (e.Tls)
            listen.UseHttps(Certificate!);
    }

    private static string HostPort(ListenEndpoint e) =>
        e.Address is null ? $"localhost:{e.Port}"
        : e.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{e.Address}]:{e.Port}"
        : $"{e.Address}:{e.Port}";

    private static X509Certificate2 LoadCertificate(string certPath, string keyPath, List<string> warnings)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new ServerConfigurationException(
                $"cannot load the TLS certificate {certPath} with key {keyPath} (both PEM): {ex.Message}", ex);
        }
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new ServerConfigurationException($"{keyPath} holds no private key for the certificate in {certPath}");
        }
        var now = DateTime.Now;
        if (certificate.NotAfter < now)
            warnings.Add($"the TLS certificate {certPath} expired on {certificate.NotAfter:u}; clients will refuse it");
        else if (certificate.NotBefore > now)
            warnings.Add($"the TLS certificate {certPath} is not valid before {certificate.NotBefore:u}; clients will refuse it");
        return certificate;
    }
}
