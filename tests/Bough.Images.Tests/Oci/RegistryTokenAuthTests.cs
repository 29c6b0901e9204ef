using System.Text;
using Bough.Images.Oci;
using Bough.Images.Tests.Oci.Tls;
using Bough.TestSupport.Registry;
using Xunit.Abstractions;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// The real registry over HTTPS with token auth: its challenges send clients to a <see cref="TokenServer"/>
/// reached over HTTPS (a <see cref="LoopbackTunnel"/> on its own port, so on another "host" as far as
/// credentials go) whose RS256 tokens it verifies (x5c chain against its rootcertbundle, iss, aud,
/// access). skopeo pushes a busybox image through the same flow, so the registry and the token server
/// are known to agree before our puller is tested against them.
/// </summary>
public sealed class TokenRegistryFixture : IAsyncLifetime, IDisposable
{
    public const string User = "bob";
    public const string Password = "t0ken-pass";
    public const string Repository = "private/busybox";
    public TestTls Tls { get; } = new();
    public TokenServer Tokens { get; private set; } = null!;
    public LoopbackTunnel TokenTunnel { get; private set; } = null!;
    public TlsRegistry Registry { get; private set; } = null!;
    private readonly TempDir _tmp = new();

    /// <summary>Overridden by fixtures whose token server answers in another shape.</summary>
    public TokenResponseShape Shape { get; init; } = TokenResponseShape.TokenAndAccessToken;

    /// <summary>The HTTPS realm the registry names: <c>https://127.0.0.1:&lt;tunnel&gt;/token</c>.</summary>
    public string Realm => $"https://127.0.0.1:{TokenTunnel.Port}/token";
    public string RealmHost => $"127.0.0.1:{TokenTunnel.Port}";

    public async Task InitializeAsync()
    {
        Tokens = TokenServer.Start(User, Password, shape: Shape);
        TokenTunnel = new LoopbackTunnel(Tokens.Port, Tls);
        Registry = await TlsRegistry.StartAsync(Tls, token: (Tokens, Realm));
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("etc/motd", "behind a token\n")])));
        layout.Tag(image.Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{Registry.Host}/{Repository}:1", (User, Password));
    }

    public Task DisposeAsync()
    {
        Registry.Dispose();
        TokenTunnel.Dispose();
        Tokens.Dispose();
        Tls.Dispose();
        _tmp.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Idempotent (xUnit may call both this and <see cref="DisposeAsync"/>).</summary>
    public void Dispose() => _tmp.Dispose();

    /// <summary>A registries.json for this registry; <paramref name="trustRealm"/> lists the token service in its <c>tokenRealms</c>.</summary>
    public string WriteCredentials(string dir, string user, string password, bool trustRealm = true)
    {
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
        var realms = trustRealm ? $$""", "tokenRealms": ["{{RealmHost}}"]""" : "";
        var path = Path.Combine(dir, "registries.json");
        File.WriteAllText(path, $$"""{ "auths": { "{{Registry.Host}}": { "auth": "{{auth}}"{{realms}} } } }""");
        return path;
    }

    /// <summary>A puller that verifies the registry's and the token service's certificates against the test CA.</summary>
    public (OciPuller Puller, IDisposable Handler) NewPuller(string dataDir, RegistryOptions options)
    {
        var handler = Tls.TrustingHandler();
        return (new OciPuller(new BlobStore(dataDir), options, handler), handler);
    }
}

/// <summary>A token server that answers only OAuth2's <c>access_token</c> field (no Docker <c>token</c>).</summary>
public sealed class AccessTokenOnlyRegistryFixture() : IAsyncLifetime
{
    public TokenRegistryFixture Inner { get; } = new() { Shape = TokenResponseShape.AccessTokenOnly };
    public Task InitializeAsync() => Inner.InitializeAsync();
    public Task DisposeAsync() => Inner.DisposeAsync();
}

/// <summary>Pulls through <see cref="OciPuller"/> against a registry that wants Bearer tokens, over verified HTTPS.</summary>
public sealed class RegistryTokenAuthTests(TokenRegistryFixture fx, ITestOutputHelper output)
    : IClassFixture<TokenRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private string Ref => $"{fx.Registry.Host}/{TokenRegistryFixture.Repository}:1";
    private static string PullScope => $"repository:{TokenRegistryFixture.Repository}:pull";

    private async Task<(ResolvedImage Image, IReadOnlyList<TokenRequest> TokenRequests)> PullAsync(string? credentialsFile, bool insecure = false)
    {
        var before = fx.Tokens.Requests.Count;
        var (puller, handler) = fx.NewPuller(Path.Combine(_tmp.Path, "data"),
            new RegistryOptions { CredentialsFile = credentialsFile, RequestTimeout = TimeSpan.FromSeconds(20) });
        using var _ = handler;
        using var __ = puller;
        try
        {
            var image = await puller.PullAsync(ImageReference.Parse(Ref), insecure, null, CancellationToken.None);
            return (image, fx.Tokens.Requests.Skip(before).ToList());
        }
        finally
        {
            foreach (var r in fx.Tokens.Requests.Skip(before)) output.WriteLine($"token request: {r}");
        }
    }

    private string Credentials(string user, string password, bool trustRealm = true) => fx.WriteCredentials(_tmp.Path, user, password, trustRealm);

    [Fact]
    public async Task With_credentials_and_the_realm_listed_it_pulls_and_the_token_service_got_them_and_the_pull_scope()
    {
        var (image, requests) = await PullAsync(Credentials(TokenRegistryFixture.User, TokenRegistryFixture.Password));

        Assert.Equal("app", image.Config.User);
        Assert.Equal(2, image.Layers.Count);
        var request = Assert.Single(requests);
        Assert.Equal(TokenRegistryFixture.User, request.User);
        Assert.True(request.Authenticated);
        Assert.Equal(200, request.Status);
        Assert.Equal(fx.Tokens.Service, request.Service);
        Assert.Equal([PullScope], request.Scopes);
    }

    [Fact]
    public async Task A_realm_on_another_host_not_listed_in_registries_json_never_sees_the_credentials()
    {
        var file = Credentials(TokenRegistryFixture.User, TokenRegistryFixture.Password, trustRealm: false);
        var before = fx.Tokens.Requests.Count;
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(file));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains($"token service {fx.Realm} on another host", e.Message);
        Assert.Contains($"\"tokenRealms\": [\"{fx.RealmHost}\"]", e.Message);
        Assert.DoesNotContain(TokenRegistryFixture.Password, e.Message);
        Assert.Empty(fx.Tokens.Requests.Skip(before)); // not asked at all, not even anonymously
    }

    [Fact]
    public async Task On_an_insecure_pull_credentials_are_never_sent_and_the_error_says_why()
    {
        var before = fx.Tokens.Requests.Count;
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            PullAsync(Credentials(TokenRegistryFixture.User, TokenRegistryFixture.Password), insecure: true));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("were not sent", e.Message);
        Assert.Contains("insecure pull", e.Message);
        var request = Assert.Single(fx.Tokens.Requests.Skip(before));
        Assert.Null(request.User); // asked anonymously
    }

    [Fact]
    public async Task One_token_per_scope_serves_the_manifest_the_config_and_every_layer()
    {
        var blobs = new BlobStore(Path.Combine(_tmp.Path, "data"));
        using var handler = fx.Tls.TrustingHandler();
        using var puller = new OciPuller(blobs, new RegistryOptions
        {
            CredentialsFile = Credentials(TokenRegistryFixture.User, TokenRegistryFixture.Password),
            MaxConcurrentDownloads = 2, // both layers at once: the token must not be fetched per download either
        }, handler);
        var before = fx.Tokens.Requests.Count;
        var logBefore = (await File.ReadAllLinesAsync(fx.Registry.LogFile)).Length;
        var image = await puller.PullAsync(ImageReference.Parse(Ref), false, null, CancellationToken.None);

        // manifest + config + 2 layers came from the registry, each request authorized by the one token.
        foreach (var d in image.Layers.Select(l => l.Digest).Append(image.ConfigDigest).Append(image.ManifestDigest))
            Assert.NotNull(blobs.TryGet(d));
        var requests = fx.Tokens.Requests.Skip(before).ToList();
        foreach (var r in requests) output.WriteLine($"token request: {r}");
        Assert.Single(requests);

        // The registry logs each request whose token it accepted: every blob GET of this pull is there, so
        // the one token really authorized them all.
        var log = (await File.ReadAllLinesAsync(fx.Registry.LogFile)).Skip(logBefore).ToList();
        foreach (var digest in image.Layers.Select(l => l.Digest).Append(image.ConfigDigest))
            Assert.Contains(log, line => line.Contains("msg=\"authorized request\"") && line.Contains("http.request.method=GET")
                && line.Contains($"/v2/{TokenRegistryFixture.Repository}/blobs/{digest}"));
    }

    [Fact]
    public async Task Without_credentials_the_anonymous_token_grants_nothing_and_it_is_registry_unauthorized()
    {
        var before = fx.Tokens.Requests.Count;
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(null));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("no credentials were sent", e.Message);

        // The client did go to the token service, anonymously, and got a token the registry refused.
        var request = Assert.Single(fx.Tokens.Requests.Skip(before));
        Assert.Null(request.User);
        Assert.Equal(200, request.Status);
        Assert.Equal([PullScope], request.Scopes);
    }

    [Fact]
    public async Task Wrong_password_is_refused_by_the_token_service_and_is_registry_unauthorized()
    {
        var before = fx.Tokens.Requests.Count;
        var file = Credentials(TokenRegistryFixture.User, "not-the-password");
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(file));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains($"credentials for user '{TokenRegistryFixture.User}'", e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains($"token service {fx.Realm} refused", e.Message);
        Assert.DoesNotContain("not-the-password", e.Message);

        var request = Assert.Single(fx.Tokens.Requests.Skip(before));
        Assert.Equal(TokenRegistryFixture.User, request.User);
        Assert.False(request.Authenticated);
        Assert.Equal(401, request.Status);
    }

    [Fact]
    public async Task Credentials_of_another_user_get_no_token()
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(Credentials("mallory", TokenRegistryFixture.Password)));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("credentials for user 'mallory'", e.Message);
    }
}

/// <summary>OAuth2-style token services answer <c>access_token</c> only; the puller reads that too.</summary>
public sealed class RegistryAccessTokenTests(AccessTokenOnlyRegistryFixture fx, ITestOutputHelper output)
    : IClassFixture<AccessTokenOnlyRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task Access_token_field_alone_is_used()
    {
        var inner = fx.Inner;
        var file = inner.WriteCredentials(_tmp.Path, TokenRegistryFixture.User, TokenRegistryFixture.Password);
        var (puller, handler) = inner.NewPuller(Path.Combine(_tmp.Path, "data"), new RegistryOptions { CredentialsFile = file });
        using var _ = handler;
        using var __ = puller;
        var image = await puller.PullAsync(ImageReference.Parse($"{inner.Registry.Host}/{TokenRegistryFixture.Repository}:1"), false, null, CancellationToken.None);
        foreach (var r in inner.Tokens.Requests) output.WriteLine($"token request: {r}");
        Assert.Equal("app", image.Config.User);
        Assert.Contains(inner.Tokens.Requests, r => r.Authenticated && r.Scopes.SequenceEqual([$"repository:{TokenRegistryFixture.Repository}:pull"]));
    }
}

/// <summary>
/// Tokens expire (Docker Hub's after 300 s), and a pull of large layers outlives one: the registry then
/// answers 401 to a token it accepted a moment ago, and the puller must fetch a new one rather than fail.
/// A class of its own: its fixture (own registry and token server) issues short-lived tokens.
/// </summary>
public sealed class RegistryTokenExpiryTests(TokenRegistryFixture fx, ITestOutputHelper output)
    : IClassFixture<TokenRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>Holds the pull when the layer downloads are about to start, until the token has expired.</summary>
    private sealed class StallBeforeLayers(TimeSpan stall) : IProgress<PullProgress>
    {
        private int _stalled;
        public void Report(PullProgress value)
        {
            if (value.Phase == "downloading" && Interlocked.Exchange(ref _stalled, 1) == 0) Thread.Sleep(stall);
        }
    }

    [Fact]
    public async Task A_token_that_expires_mid_pull_is_fetched_again()
    {
        var file = fx.WriteCredentials(_tmp.Path, TokenRegistryFixture.User, TokenRegistryFixture.Password);
        fx.Tokens.Lifetime = TimeSpan.FromSeconds(-55); // the registry's 60 s leeway leaves about 5 s
        var before = fx.Tokens.Requests.Count;

        var (puller, handler) = fx.NewPuller(Path.Combine(_tmp.Path, "data"), new RegistryOptions { CredentialsFile = file });
        using var _ = handler;
        using var __ = puller;
        var image = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/{TokenRegistryFixture.Repository}:1"), false,
            new StallBeforeLayers(TimeSpan.FromSeconds(7)), CancellationToken.None);

        var requests = fx.Tokens.Requests.Skip(before).ToList();
        foreach (var r in requests) output.WriteLine($"token request: {r}");
        Assert.Equal(2, image.Layers.Count);
        // The first token served the manifest and config; the registry refused it for the layers (it says why
        // in its log), and a second one was fetched for the same scope.
        Assert.True(requests.Count >= 2, $"expected a second token request after expiry, got {requests.Count}");
        Assert.All(requests, r => Assert.True(r.Authenticated && r.Status == 200 && r.Scopes.SequenceEqual([$"repository:{TokenRegistryFixture.Repository}:pull"])));
        Assert.Contains("token not to be used after", await File.ReadAllTextAsync(fx.Registry.LogFile));
    }
}
