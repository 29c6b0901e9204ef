using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bough.Images.Tests.Oci.Tls;

/// <summary>
/// A throwaway certificate authority and a server certificate for 127.0.0.1 signed by it, so tests can run
/// real HTTPS servers (the registry, a token service) on loopback. Clients trust exactly this CA through
/// <see cref="TrustingHandler"/>, the same seam a host with the CA in its trust store would give: the
/// verification itself is the real chain and name check.
/// </summary>
public sealed class TestTls : IDisposable
{
    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestTls()
    {
        var caRequest = new CertificateRequest("CN=bough test CA", _caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        Ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(2));

        var request = new CertificateRequest("CN=127.0.0.1", _serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var signed = request.Create(Ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
        Server = signed.CopyWithPrivateKey(_serverKey);
    }

    public X509Certificate2 Ca { get; }

    /// <summary>The server certificate with its private key.</summary>
    public X509Certificate2 Server { get; }

    /// <summary>Writes the server certificate and key as PEM (for docker-registry's <c>http.tls</c>): (cert, key).</summary>
    public (string Cert, string Key) WriteServerPem(string dir)
    {
        var cert = Path.Combine(dir, "server.crt");
        var key = Path.Combine(dir, "server.key");
        File.WriteAllText(cert, Server.ExportCertificatePem());
        File.WriteAllText(key, _serverKey.ExportPkcs8PrivateKeyPem());
        return (cert, key);
    }

    /// <summary>An HTTP handler that verifies servers against this CA only (chain and name), as the puller's would against the host's store.</summary>
    public SocketsHttpHandler TrustingHandler() => new()
    {
        AllowAutoRedirect = true,
        AutomaticDecompression = DecompressionMethods.None,
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, cert, _, errors) => Verify(cert, errors) },
    };

    private bool Verify(X509Certificate? cert, SslPolicyErrors errors)
    {
        if (cert is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(cert);
        return chain.Build(leaf);
    }

    public void Dispose()
    {
        Server.Dispose();
        Ca.Dispose();
        _serverKey.Dispose();
        _caKey.Dispose();
    }
}
