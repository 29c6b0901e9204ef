using System.Text;
using Bough.Images.Oci;
using Bough.TestSupport.Registry;
using Xunit.Abstractions;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// The real registry with token auth: its challenges send clients to a <see cref="TokenServer"/> whose
/// RS256 tokens it verifies (x5c chain against its rootcertbundle, iss, aud, access). skopeo pushes a
/// busybox image through the same flow, so the registry and the token server are known to agree before
/// our puller is tested against them.
/// </summary>
public sealed class TokenRegistryFixture : IAsyncLifetime, IDisposable
{
    public const string User = "bob";
    public const string Password = "t0ken-pass";
    public const string Repository = "private/busybox";
    public TokenServer Tokens { get; private set; } = null!;
    public LocalRegistry Registry { get; private set; } = null!;
    private readonly TempDir _tmp = new();

    /// <summary>Overridden by fixtures whose token server answers in another shape.</summary>
    public TokenResponseShape Shape { get; init; } = TokenResponseShape.TokenAndAccessToken;

    public async Task InitializeAsync()
    {
        Tokens = TokenServer.Start(User, Password, shape: Shape);
        Registry = await LocalRegistry.StartAsync(tokenAuth: Tokens);
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("etc/motd", "behind a token\n")])));
        layout.Tag(image.Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{Registry.Host}/{Repository}:1", (User, Password));
    }

    public Task DisposeAsync()
    {
        Registry.Dispose();
        Tokens.Dispose();
        _tmp.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Idempotent (xUnit may call both this and <see cref="DisposeAsync"/>).</summary>
    public void Dispose() => _tmp.Dispose();
}

/// <summary>A token server that answers only OAuth2's <c>access_token</c> field (no Docker <c>token</c>).</summary>
public sealed class AccessTokenOnlyRegistryFixture() : IAsyncLifetime
{
    public TokenRegistryFixture Inner { get; } = new() { Shape = TokenResponseShape.AccessTokenOnly };
    public Task InitializeAsync() => Inner.InitializeAsync();
    public Task DisposeAsync() => Inner.DisposeAsync();
}

/// <summary>Pulls through <see cref="OciPuller"/> against a registry that wants Bearer tokens.</summary>
public sealed class RegistryTokenAuthTests(TokenRegistryFixture fx, ITestOutputHelper output)
    : IClassFixture<TokenRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private string Ref => $"{fx.Registry.Host}/{TokenRegistryFixture.Repository}:1";
    private static string PullScope => $"repository:{TokenRegistryFixture.Repository}:pull";

    private async Task<(ResolvedImage Image, IReadOnlyList<TokenRequest> TokenRequests)> PullAsync(string? credentialsFile)
    {
        var before = fx.Tokens.Requests.Count;
        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")),
            new RegistryOptions { CredentialsFile = credentialsFile, RequestTimeout = TimeSpan.FromSeconds(20) });
        try
        {
            var image = await puller.PullAsync(ImageReference.Parse(Ref), insecure: true, null, CancellationToken.None);
            return (image, fx.Tokens.Requests.Skip(before).ToList());
        }
        finally
        {
            foreach (var r in fx.Tokens.Requests.Skip(before)) output.WriteLine($"token request: {r}");
        }
    }

    private string WriteCredentials(string user, string password)
    {
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
        var path = Path.Combine(_tmp.Path, "registries.json");
        File.WriteAllText(path, $$"""{ "auths": { "{{fx.Registry.Host}}": { "auth": "{{auth}}" } } }""");
        return path;
    }

    [Fact]
    public async Task With_credentials_it_pulls_and_the_token_service_got_basic_credentials_and_the_pull_scope()
    {
        var (image, requests) = await PullAsync(WriteCredentials(TokenRegistryFixture.User, TokenRegistryFixture.Password));

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
    public async Task One_token_per_scope_serves_the_manifest_the_config_and_every_layer()
    {
        var blobs = new BlobStore(Path.Combine(_tmp.Path, "data"));
        using var puller = new OciPuller(blobs, new RegistryOptions
        {
            CredentialsFile = WriteCredentials(TokenRegistryFixture.User, TokenRegistryFixture.Password),
            MaxConcurrentDownloads = 2, // both layers at once: the token must not be fetched per download either
        });
        var before = fx.Tokens.Requests.Count;
        var logBefore = (await File.ReadAllLinesAsync(fx.Registry.LogFile)).Length;
        var image = await puller.PullAsync(ImageReference.Parse(Ref), true, null, CancellationToken.None);

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
        var file = WriteCredentials(TokenRegistryFixture.User, "not-the-password");
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(file));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains($"credentials for user '{TokenRegistryFixture.User}'", e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains($"token service {fx.Tokens.Realm} refused", e.Message);
        Assert.DoesNotContain("not-the-password", e.Message);

        var request = Assert.Single(fx.Tokens.Requests.Skip(before));
        Assert.Equal(TokenRegistryFixture.User, request.User);
        Assert.False(request.Authenticated);
        Assert.Equal(401, request.Status);
    }

    [Fact]
    public async Task Credentials_of_another_user_get_no_token()
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(WriteCredentials("mallory", TokenRegistryFixture.Password)));
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
        var registry = fx.Inner.Registry;
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{TokenRegistryFixture.User}:{TokenRegistryFixture.Password}"));
        var file = Path.Combine(_tmp.Path, "registries.json");
        await File.WriteAllTextAsync(file, $$"""{ "auths": { "{{registry.Host}}": { "auth": "{{auth}}" } } }""");
        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")), new RegistryOptions { CredentialsFile = file });
        var image = await puller.PullAsync(ImageReference.Parse($"{registry.Host}/{TokenRegistryFixture.Repository}:1"), true, null, CancellationToken.None);
        foreach (var r in fx.Inner.Tokens.Requests) output.WriteLine($"token request: {r}");
        Assert.Equal("app", image.Config.User);
        Assert.Contains(fx.Inner.Tokens.Requests, r => r.Authenticated && r.Scopes.SequenceEqual([$"repository:{TokenRegistryFixture.Repository}:pull"]));
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
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{TokenRegistryFixture.User}:{TokenRegistryFixture.Password}"));
        var file = Path.Combine(_tmp.Path, "registries.json");
        await File.WriteAllTextAsync(file, $$"""{ "auths": { "{{fx.Registry.Host}}": { "auth": "{{auth}}" } } }""");
        fx.Tokens.Lifetime = TimeSpan.FromSeconds(-55); // the registry's 60 s leeway leaves about 5 s
        var before = fx.Tokens.Requests.Count;

        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")), new RegistryOptions { CredentialsFile = file });
        var image = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/{TokenRegistryFixture.Repository}:1"), true,
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
