using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Bough.TestSupport.Registry;

/// <summary>
/// A real registry (distribution 2.8, <c>/usr/bin/docker-registry</c>) on a free loopback port, with a
/// throwaway config and storage in a temp dir; optionally htpasswd Basic auth (2.8 accepts it without
/// TLS) or Bearer token auth against a <see cref="TokenServer"/>. Killed and removed on dispose.
/// </summary>
public sealed class LocalRegistry : IDisposable
{
    public const string Binary = "/usr/bin/docker-registry";

    private readonly Process _process;

    private LocalRegistry(string dir, int port, Process process, (string User, string Password)? creds)
    {
        Dir = dir;
        Port = port;
        _process = process;
        Credentials = creds;
    }

    public string Dir { get; }
    public int Port { get; }
    /// <summary><c>127.0.0.1:port</c>: what image references name.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public string StorageDir => Path.Combine(Dir, "storage");
    public string LogFile => Path.Combine(Dir, "registry.log");
    public (string User, string Password)? Credentials { get; }

    /// <summary>The file the registry serves a blob from (tests corrupt it to check verification).</summary>
    public string BlobDataPath(string digest)
    {
        var hex = digest["sha256:".Length..];
        return Path.Combine(StorageDir, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    /// <param name="basicAuth">htpasswd Basic auth with this one user.</param>
    /// <param name="tokenAuth">Token auth: the registry challenges with <c>Bearer realm=..,service=..,scope=..</c>
    /// pointing at this server and trusts the tokens it signs (its certificate is the rootcertbundle).</param>
    public static async Task<LocalRegistry> StartAsync((string User, string Password)? basicAuth = null,
        TokenServer? tokenAuth = null, CancellationToken ct = default)
    {
        if (basicAuth is not null && tokenAuth is not null)
            throw new ArgumentException("a registry has one auth method: basic or token, not both");
        var dir = Directory.CreateTempSubdirectory("bough-registry-").FullName;
        var port = FreePort();
        var auth = "";
        if (tokenAuth is not null)
        {
            var bundle = Path.Combine(dir, "token-root.pem");
            await File.WriteAllTextAsync(bundle, tokenAuth.RootCertificatePem, ct);
            auth = $"auth:\n  token:\n    realm: {tokenAuth.Realm}\n    service: {tokenAuth.Service}\n"
                   + $"    issuer: {TokenServer.Issuer}\n    rootcertbundle: {bundle}\n";
        }
        if (basicAuth is { } a)
        {
            var htpasswd = Path.Combine(dir, "htpasswd");
            await RunAsync("htpasswd", ["-Bbc", htpasswd, a.User, a.Password], ct);
            auth = $"auth:\n  htpasswd:\n    realm: bough-test\n    path: {htpasswd}\n";
        }
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
            {auth}
            """, ct);
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            ArgumentList = { "-c", "exec \"$0\" serve \"$1\" >\"$2\" 2>&1", Binary, config, Path.Combine(dir, "registry.log") },
        };
        var p = Process.Start(psi)!;
        var registry = new LocalRegistry(dir, port, p, basicAuth);
        try
        {
            await registry.WaitReadyAsync(ct);
            return registry;
        }
        catch
        {
            registry.Dispose();
            throw;
        }
    }

    private async Task WaitReadyAsync(CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"docker-registry exited ({_process.ExitCode}): {File.ReadAllText(LogFile)}");
            try
            {
                using var r = await http.GetAsync($"http://{Host}/v2/", ct);
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"docker-registry did not answer on {Host}: {File.ReadAllText(LogFile)}");
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
