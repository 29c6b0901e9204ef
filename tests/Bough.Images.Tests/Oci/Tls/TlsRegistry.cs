using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bough.TestSupport.Registry;

namespace Bough.Images.Tests.Oci.Tls;

/// <summary>
/// The real registry (<c>docker-registry</c>, distribution 2.8) serving HTTPS with the <see cref="TestTls"/>
/// server certificate, with htpasswd Basic auth or token auth whose realm the test chooses (an HTTPS
/// <see cref="LoopbackTunnel"/> in front of a <see cref="TokenServer"/>, or its plain-HTTP address).
/// The shared <c>LocalRegistry</c> speaks plain HTTP only, and credentials are never sent over that.
/// </summary>
public sealed class TlsRegistry : IDisposable
{
    private readonly Process _process;

    private TlsRegistry(string dir, int port, Process process)
    {
        Dir = dir;
        Port = port;
        _process = process;
    }

    public string Dir { get; }
    public int Port { get; }
    /// <summary><c>127.0.0.1:port</c>: what image references name.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public string LogFile => Path.Combine(Dir, "registry.log");

    /// <param name="basicAuth">htpasswd Basic auth with this one user.</param>
    /// <param name="token">Token auth: the signing server, and the realm URL the registry's challenges name.</param>
    public static async Task<TlsRegistry> StartAsync(TestTls tls, (string User, string Password)? basicAuth = null,
        (TokenServer Server, string Realm)? token = null, CancellationToken ct = default)
    {
        var dir = Directory.CreateTempSubdirectory("bough-tls-registry-").FullName;
        var (cert, key) = tls.WriteServerPem(dir);
        var auth = "";
        if (basicAuth is { } a)
        {
            var htpasswd = Path.Combine(dir, "htpasswd");
            await RunAsync("htpasswd", ["-Bbc", htpasswd, a.User, a.Password], ct);
            auth = $"auth:\n  htpasswd:\n    realm: bough-test\n    path: {htpasswd}\n";
        }
        if (token is { } t)
        {
            var bundle = Path.Combine(dir, "token-root.pem");
            await File.WriteAllTextAsync(bundle, t.Server.RootCertificatePem, ct);
            auth = $"auth:\n  token:\n    realm: {t.Realm}\n    service: {t.Server.Service}\n"
                   + $"    issuer: {TokenServer.Issuer}\n    rootcertbundle: {bundle}\n";
        }
        var port = FreePort();
        var config = Path.Combine(dir, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {Path.Combine(dir, "storage")}
            http:
              addr: 127.0.0.1:{port}
              secret: bough-test-secret
              tls:
                certificate: {cert}
                key: {key}
            {auth}
            """, ct);
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            ArgumentList = { "-c", "exec \"$0\" serve \"$1\" >\"$2\" 2>&1", LocalRegistry.Binary, config, Path.Combine(dir, "registry.log") },
        };
        var registry = new TlsRegistry(dir, port, Process.Start(psi)!);
        try
        {
            await registry.WaitReadyAsync(tls, ct);
            return registry;
        }
        catch
        {
            registry.Dispose();
            throw;
        }
    }

    private async Task WaitReadyAsync(TestTls tls, CancellationToken ct)
    {
        using var http = new HttpClient(tls.TrustingHandler()) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"docker-registry exited ({_process.ExitCode}): {await File.ReadAllTextAsync(LogFile, ct)}");
            try
            {
                using var r = await http.GetAsync($"https://{Host}/v2/", ct);
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"docker-registry did not answer on https://{Host}: {await File.ReadAllTextAsync(LogFile, ct)}");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static async Task RunAsync(string file, string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync(ct);
        await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed: {await err}");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
