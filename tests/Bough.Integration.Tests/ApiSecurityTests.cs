using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// The API lets in only its owner: the token (missing, wrong, rotated), the listeners (TLS,
/// Unix socket, plain HTTP off loopback refused), Content-Type and Host checks, and the modes of
/// the data directory and of what the daemon writes inside it. A real daemon; one test starts a VM
/// (for the files it makes).
/// </summary>
public sealed class ApiSecurityTests(SecureDaemonFixture f) : IClassFixture<SecureDaemonFixture>
{
    private DaemonProcess Daemon => f.Daemon;

    /// <summary>A client that sends no token at all.</summary>
    private HttpClient Anonymous() => new() { BaseAddress = Daemon.Url, Timeout = TimeSpan.FromSeconds(30) };

    public static TheoryData<string, string> Endpoints => new()
    {
        { "GET", "/v1/sandboxes" },
        { "GET", "/v1/version" },
        { "POST", "/v1/sandboxes" },
        { "DELETE", "/v1/sandboxes/sb-nope" },
        { "GET", "/v1/images" },
        { "GET", "/v1/snapshots" },
        { "GET", "/openapi/v1.json" },
        { "GET", "/v1/no-such-endpoint" },
        // Only the dashboard's own segment (/ui/...) is let through: nothing that merely starts with its name.
        { "GET", "/uix" },
        { "GET", "/ui.json" },
        { "GET", "/v1/ui" },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Without_a_token_every_endpoint_is_401_problem(string method, string path)
    {
        using var http = Anonymous();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST")
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        using var r = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        var problem = await Problems.ReadAsync(r);
        Assert.Equal("unauthorized", problem.Code);
        Assert.Contains("bough token", problem.Detail);
        Assert.Equal("Bearer", Assert.Single(r.Headers.WwwAuthenticate).Scheme);
    }

    [Fact]
    public async Task A_wrong_token_is_401_in_either_header()
    {
        using var http = Anonymous();
        foreach (var (name, value) in new[] { ("Authorization", "Bearer " + Daemon.Token + "x"), ("X-API-Key", "not-the-token-at-all"), ("Authorization", "Basic " + Daemon.Token) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/sandboxes");
            request.Headers.TryAddWithoutValidation(name, value);
            using var r = await http.SendAsync(request);
            Assert.True(r.StatusCode == HttpStatusCode.Unauthorized, $"{name}: {value[..8]}... gave {r.StatusCode}");
            Assert.Equal("unauthorized", (await Problems.ReadAsync(r)).Code);
        }
    }

    [Fact]
    public async Task Healthz_needs_no_token_and_both_headers_carry_the_token()
    {
        using var http = Anonymous();
        using (var health = await http.GetAsync("/healthz"))
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        using var apiKey = new HttpRequestMessage(HttpMethod.Get, "/v1/sandboxes");
        apiKey.Headers.Add("X-API-Key", Daemon.Token);
        using (var r = await http.SendAsync(apiKey))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        using var bearer = new HttpRequestMessage(HttpMethod.Get, "/v1/version");
        bearer.Headers.TryAddWithoutValidation("Authorization", "bearer " + Daemon.Token); // the scheme is case-insensitive
        using (var r = await http.SendAsync(bearer))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task Rotating_the_token_with_the_cli_locks_out_the_old_one_at_once()
    {
        var old = Daemon.Token;
        var printed = await Cli(Daemon, null, "token");
        Assert.True(printed.Code == 0, printed.ToString());
        Assert.Equal(old + "\n", printed.Out);

        var rotated = await Cli(Daemon, null, "token", "--rotate");
        Assert.True(rotated.Code == 0, rotated.ToString());
        var fresh = rotated.Out.Trim();
        Assert.NotEqual(old, fresh);
        Assert.True(fresh.Length >= 43, fresh);
        Assert.Equal(fresh, (await File.ReadAllTextAsync(Daemon.TokenFile)).Trim());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Daemon.TokenFile));

        try
        {
            using var stale = new BoughClient(Daemon.Url, old);
            var refused = await Assert.ThrowsAsync<BoughApiException>(() => stale.ListSandboxesAsync());
            Assert.Equal(401, refused.Status);
            Assert.Contains("rotated", refused.Message);

            using var current = new BoughClient(Daemon.Url, fresh);
            Assert.NotNull(await current.ListSandboxesAsync());
        }
        finally
        {
            Daemon.ReloadToken();
        }
        // The CLI, finding the token in the data dir by itself, follows the rotation.
        var ls = await Cli(Daemon, null, "ls");
        Assert.True(ls.Code == 0, ls.ToString());
    }

    [Fact]
    public async Task A_cli_without_a_token_says_how_to_get_one()
    {
        using var empty = new TempDir("notoken");
        var none = await Cli(Daemon, empty.Path, "ls");
        Assert.Equal(1, none.Code);
        Assert.Contains("requires an API token and none was found", none.Err);
        Assert.Contains("BOUGH_TOKEN", none.Err);
        Assert.Contains("bough token", none.Err);

        var wrong = await Cli(Daemon, empty.Path, "ls", env: ("BOUGH_TOKEN", "definitely-not-the-token"));
        Assert.Equal(1, wrong.Code);
        Assert.Contains("refused the API token from $BOUGH_TOKEN", wrong.Err);
    }

    [Fact]
    public async Task Plain_http_on_a_non_loopback_address_is_refused_before_anything_starts()
    {
        using var dir = new TempDir("refuse");
        var addresses = new List<string> { "http://0.0.0.0:0", "http://[::]:0" };
        if (OwnAddress() is { } own)
            addresses.Add($"http://{own}:0");
        foreach (var listen in addresses)
        {
            var (code, output) = await DaemonProcess.RunToExitAsync(TimeSpan.FromMinutes(1),
                "--listen", listen, "--data-dir", dir.Combine("data"));
            Assert.True(code == 2, $"{listen}: exit {code}\n{output}");
            Assert.Contains("refusing to start", output);
            Assert.Contains("--tls-cert", output);
            Assert.Contains("--insecure-plaintext", output);
            Assert.False(Directory.Exists(dir.Combine("data")), "the refusal came after the data dir was made");
        }

        var (https, noCert) = await DaemonProcess.RunToExitAsync(TimeSpan.FromMinutes(1),
            "--listen", "https://127.0.0.1:0", "--data-dir", dir.Combine("data"));
        Assert.Equal(2, https);
        Assert.Contains("no certificate was given", noCert);
    }

    [Fact]
    public void Insecure_plaintext_is_allowed_with_a_warning()
    {
        var options = new Bough.Server.ServerOptions { TokenFile = "/nonexistent/api-token", InsecurePlaintext = true };
        options.Listen.Add("http://0.0.0.0:7878");
        options.Listen.Add("http://127.0.0.1:7878");
        var warning = Assert.Single(options.Validate());
        Assert.Contains("0.0.0.0", warning);
        Assert.Contains("unencrypted", warning);
    }

    [Fact]
    public async Task Tls_with_a_self_signed_certificate_works_for_a_client_that_trusts_it()
    {
        using (var trusting = f.TlsClient(trust: true))
        {
            using (var health = await trusting.GetAsync("/healthz"))
                Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            using (var anonymous = await trusting.GetAsync("/v1/sandboxes"))
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            using var client = new BoughClient(trusting, Daemon.Token);
            Assert.Equal("v1", (await client.GetVersionAsync()).Api);
        }

        using var untrusting = f.TlsClient(trust: false);
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync("/healthz"));
        Assert.Equal(HttpRequestError.SecureConnectionError, ex.HttpRequestError);
    }

    [Fact]
    public async Task The_unix_socket_is_owner_only_and_serves_the_client_and_the_cli()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f.SocketPath));

        using (var client = new BoughClient(new Uri("unix:" + f.SocketPath), Daemon.Token))
        {
            Assert.Equal("v1", (await client.GetVersionAsync()).Api);
            Assert.NotNull(await client.ListSandboxesAsync());
        }
        using (var anonymous = new BoughClient(new Uri("unix:" + f.SocketPath), BoughToken.Of("wrong-wrong-wrong-wrong")))
            Assert.Equal(401, (await Assert.ThrowsAsync<BoughApiException>(() => anonymous.ListSandboxesAsync())).Status);

        var ls = await Cli(Daemon, null, "ls", env: ("BOUGH_URL", "unix:" + f.SocketPath));
        Assert.True(ls.Code == 0, ls.ToString());
        Assert.StartsWith("ID", ls.Out);
    }

    [Theory]
    [InlineData("/v1/sandboxes", "text/plain")]
    [InlineData("/v1/images", "text/plain")]
    [InlineData("/v1/sandboxes/sb-nope/branch", "text/plain")]
    [InlineData("/v1/sandboxes", "application/x-www-form-urlencoded")]
    public async Task A_json_endpoint_refuses_another_content_type_with_415(string path, string contentType)
    {
        using var body = new StringContent("{}", Encoding.UTF8);
        body.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var r = await Daemon.Http.PostAsync(path, body);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
        Assert.Equal("unsupported_media_type", (await Problems.ReadAsync(r)).Code);
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:7878")]
    [InlineData("10.0.2.2")]
    [InlineData("127.0.0.1.nip.io")]
    public async Task A_loopback_listener_refuses_a_foreign_host_name(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/version");
        request.Headers.Host = host;
        using var r = await Daemon.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, r.StatusCode);
        Assert.Equal("host_not_allowed", (await Problems.ReadAsync(r)).Code);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    [InlineData("[::1]")]
    public async Task A_loopback_listener_answers_for_loopback_names(string name)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/version");
        request.Headers.Host = $"{name}:{Daemon.Url.Port}";
        using var r = await Daemon.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task The_data_directory_and_what_the_daemon_writes_are_owner_only()
    {
        Assert.NotEqual(UnixFileMode.None, f.DataDirModeBefore & UnixFileMode.OtherRead); // it really was tightened
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, f.DataDirModeAfterStart);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Daemon.TokenFile));

        // The daemon runs with umask 077, so what it, qemu-img and QEMU create inside is owner-only itself, not only
        // out of reach through the data dir. A running sandbox and a snapshot of it make the files to look at.
        var sb = await Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest());
        string? snapshot = null;
        try
        {
            snapshot = (await Daemon.Client.CreateSnapshotAsync(sb.Id)).Id;
            var sandboxDir = Path.Combine(Daemon.DataDir, "sandboxes", sb.Id);
            var snapshotDir = Path.Combine(Daemon.DataDir, "snapshots", snapshot);
            foreach (var made in new[]
                     {
                         Path.Combine(Daemon.DataDir, "bough.db"), Daemon.TokenFile, Path.Combine(sandboxDir, "qmp.sock"),
                         Path.Combine(sandboxDir, "console.log"), Path.Combine(snapshotDir, "snapshot.json"), Path.Combine(snapshotDir, "memory.layer"),
                     })
                Assert.True(File.Exists(made), $"{made} is missing: the walk below would prove nothing");
            Assert.NotEmpty(Directory.EnumerateFiles(sandboxDir, "*.qcow2"));

            // Links (kernel, cache, images/base) lead to the tests' shared caches; "images" itself the test made.
            var open = OpenToOthers(Daemon.DataDir, skip: Path.Combine(Daemon.DataDir, "images"));
            Assert.Empty(open);
        }
        finally
        {
            await Daemon.Client.DeleteSandboxAsync(sb.Id);
            if (snapshot is not null) await Daemon.Client.DeleteSnapshotAsync(snapshot);
        }
    }

    /// <summary>Entries under <paramref name="dir"/> (links not followed) that give group or others any access, with their modes.</summary>
    private static List<string> OpenToOthers(string dir, string skip)
    {
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                    UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        var found = new List<string>();
        foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos())
        {
            if (e.LinkTarget is not null) continue;
            if (e.FullName != skip && (e.UnixFileMode & others) != 0)
                found.Add($"{e.FullName} {Convert.ToString((int)e.UnixFileMode, 8)}");
            if (e is DirectoryInfo sub) found.AddRange(OpenToOthers(sub.FullName, skip));
        }
        return found;
    }

    [Fact]
    public async Task The_openapi_document_declares_the_token()
    {
        var doc = await Daemon.Http.GetStringAsync("/openapi/v1.json");
        using var json = System.Text.Json.JsonDocument.Parse(doc);
        var schemes = json.RootElement.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal("bearer", schemes.GetProperty("bearer").GetProperty("scheme").GetString());
        Assert.Equal("X-API-Key", schemes.GetProperty("apiKey").GetProperty("name").GetString());
        Assert.Equal(0, json.RootElement.GetProperty("paths").GetProperty("/healthz").GetProperty("get").GetProperty("security").GetArrayLength());
        Assert.True(json.RootElement.GetProperty("paths").GetProperty("/v1/sandboxes").GetProperty("get").GetProperty("responses").TryGetProperty("401", out _));
    }

    /// <summary>This host's first non-loopback IPv4 address (nothing is sent to it: the daemon must refuse to bind).</summary>
    private static IPAddress? OwnAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));

    /// <summary>Runs the CLI against the daemon; <paramref name="home"/> replaces its data dir (where the CLI looks for the token).</summary>
    private static async Task<CliRun> Cli(DaemonProcess daemon, string? home, string first, params string[] rest) =>
        await Cli(daemon, home, [first, .. rest], []);

    private static Task<CliRun> Cli(DaemonProcess daemon, string? home, string first, string second, (string, string) env) =>
        Cli(daemon, home, [first, second], [env]);

    private static Task<CliRun> Cli(DaemonProcess daemon, string? home, string first, (string, string) env) =>
        Cli(daemon, home, [first], [env]);

    private static async Task<CliRun> Cli(DaemonProcess daemon, string? home, string[] args, (string Name, string Value)[] env)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        daemon.ConfigureCli(psi);
        if (home is not null) psi.Environment["BOUGH_HOME"] = home;
        foreach (var (name, value) in env) psi.Environment[name] = value;
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        return new CliRun(p.ExitCode, await stdout, await stderr);
    }
}
