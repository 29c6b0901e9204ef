using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bough.Integration.Tests;

/// <summary>
/// One daemon for the API security tests, with every kind of listener: plain HTTP on loopback
/// (the harness's), HTTPS on loopback with a self-signed certificate made here, and a Unix
/// socket. No sandbox is created: these tests need the HTTP front end, not a VM. Its data
/// directory starts out world-readable (0755), as an older Bough left it.
/// </summary>
public sealed class SecureDaemonFixture : IAsyncLifetime
{
    /// <summary>Certificate, key and socket; under /tmp with a short name (a socket path fits in 108 bytes).</summary>
    private readonly string _files = Path.Combine("/tmp", "bough-tls-" + Guid.NewGuid().ToString("N")[..10]);

    public DaemonProcess Daemon { get; private set; } = null!;
    public X509Certificate2 Certificate { get; private set; } = null!;
    public Uri TlsUrl { get; private set; } = null!;
    public string SocketPath => Path.Combine(_files, "api.sock");
    public UnixFileMode DataDirModeBefore { get; private set; }

    /// <summary>Taken right after the start, before any test (`bough token --rotate` also tightens it).</summary>
    public UnixFileMode DataDirModeAfterStart { get; private set; }

    public async Task InitializeAsync()
    {
        var (certPem, keyPem) = CreateSelfSigned(out var certificate);
        Certificate = certificate;
        Directory.CreateDirectory(_files);
        var certFile = Path.Combine(_files, "cert.pem");
        var keyFile = Path.Combine(_files, "key.pem");
        await File.WriteAllTextAsync(certFile, certPem);
        await File.WriteAllTextAsync(keyFile, keyPem);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var dataDir = TestEnvironment.NewDataDir();
        File.SetUnixFileMode(dataDir, (UnixFileMode)0b111_101_101); // 0755
        DataDirModeBefore = File.GetUnixFileMode(dataDir);
        TlsUrl = new Uri($"https://127.0.0.1:{DaemonProcess.FreePort()}/");
        Daemon = await DaemonProcess.StartAsync(dataDir,
            "--listen", "unix:" + SocketPath,
            "--listen", TlsUrl.ToString().TrimEnd('/'),
            "--tls-cert", certFile, "--tls-key", keyFile);
        DataDirModeAfterStart = File.GetUnixFileMode(dataDir);
    }

    /// <summary>An HTTP client that trusts exactly <see cref="Certificate"/> as its root (or nothing extra).</summary>
    public HttpClient TlsClient(bool trust)
    {
        var handler = new SocketsHttpHandler();
        if (trust)
        {
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.Add(Certificate);
            handler.SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
        }
        return new HttpClient(handler) { BaseAddress = TlsUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        var dir = Daemon.DataDir;
        await Daemon.DisposeAsync();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        Certificate.Dispose();
        try { Directory.Delete(_files, recursive: true); } catch (IOException) { }
    }

    /// <summary>A P-256 certificate for 127.0.0.1 and localhost, valid for a day, signed by itself.</summary>
    private static (string Cert, string Key) CreateSelfSigned(out X509Certificate2 certificate)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=bough-test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return (certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
