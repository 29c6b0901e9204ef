using System.Text;
using Bough.Images.Oci;
using Bough.Images.Tests.Oci.Tls;
using Bough.TestSupport.Registry;
using Xunit.Abstractions;

namespace Bough.Images.Tests.Oci;

/// <summary>Where <see cref="CredentialPolicy"/> lets credentials go, decided on real URLs.</summary>
public sealed class CredentialPolicyTests
{
    private static readonly RegistryCredential Alice = new("alice", "pw");

    private static CredentialPolicy Policy(string registry, bool insecure = false, RegistryCredential? c = null) =>
        new(ImageReference.Parse($"{registry}/x/y:1"), insecure, c ?? Alice);

    [Theory]
    [InlineData("https://reg.example:5000/v2/", true)]
    [InlineData("http://reg.example:5000/v2/", false)]   // plaintext
    [InlineData("https://reg.example:5001/v2/", false)]  // another port is another service
    [InlineData("https://other.example:5000/v2/", false)]
    public void Basic_goes_only_to_the_registry_itself_over_https(string url, bool allowed) =>
        Assert.Equal(allowed, Policy("reg.example:5000").MaySendToRegistry(new Uri(url)));

    [Fact]
    public void Nothing_goes_anywhere_on_an_insecure_pull()
    {
        Assert.False(Policy("reg.example", insecure: true).MaySendToRegistry(new Uri("https://reg.example/v2/")));
        Assert.False(Policy("reg.example", insecure: true).SendCredentialsToRealm(new Uri("https://reg.example/token"), "f"));
        Assert.False(Policy("reg.example", insecure: true).SendCredentialsToRealm(new Uri("http://reg.example/token"), "f")); // anonymous
    }

    [Fact]
    public void A_realm_on_the_registry_host_gets_credentials()
    {
        Assert.True(Policy("reg.example").SendCredentialsToRealm(new Uri("https://reg.example/token?x=1"), "f"));
        Assert.True(Policy("reg.example:443").SendCredentialsToRealm(new Uri("https://reg.example/token"), "f"));
    }

    [Fact]
    public void Docker_hub_realm_is_built_in()
    {
        Assert.True(Policy("docker.io").SendCredentialsToRealm(new Uri("https://auth.docker.io/token"), "f"));
        // ...for Docker Hub only.
        Assert.Throws<ImageException>(() => Policy("reg.example").SendCredentialsToRealm(new Uri("https://auth.docker.io/token"), "f"));
    }

    [Theory]
    [InlineData("auth.example")]
    [InlineData("auth.example:443")]
    [InlineData("https://auth.example/jwt/auth")]
    public void A_realm_listed_in_token_realms_gets_credentials(string entry)
    {
        var policy = Policy("reg.example", c: Alice with { TokenRealms = [entry] });
        Assert.True(policy.SendCredentialsToRealm(new Uri("https://auth.example/token"), "f"));
        Assert.Throws<ImageException>(() => policy.SendCredentialsToRealm(new Uri("https://auth.example:8443/token"), "f"));
        Assert.Throws<ImageException>(() => policy.SendCredentialsToRealm(new Uri("https://evil.example/token"), "f"));
    }

    [Fact]
    public void A_realm_elsewhere_is_refused_with_credentials_and_asked_anonymously_without()
    {
        var e = Assert.Throws<ImageException>(() => Policy("reg.example").SendCredentialsToRealm(new Uri("https://evil.example/t"), "/data/registries.json"));
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("\"tokenRealms\": [\"evil.example\"]", e.Message);
        Assert.Contains("/data/registries.json", e.Message);
        var anonymous = new CredentialPolicy(ImageReference.Parse("nvcr.io/x/y:1"), false, null);
        Assert.False(anonymous.SendCredentialsToRealm(new Uri("https://authn.nvidia.com/token"), "f"));
    }

    [Fact]
    public void A_plain_http_realm_is_refused_on_a_secure_pull_even_without_credentials()
    {
        var e = Assert.Throws<ImageException>(() => new CredentialPolicy(ImageReference.Parse("reg.example/x:1"), false, null)
            .SendCredentialsToRealm(new Uri("http://reg.example/token"), "f"));
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("over plain HTTP", e.Message);
        Assert.Throws<ImageException>(() => Policy("reg.example", c: Alice with { TokenRealms = ["http://reg.example"] })
            .SendCredentialsToRealm(new Uri("http://reg.example/token"), "f"));
    }
}

/// <summary>The policy end to end against the real registry and token server.</summary>
public sealed class RegistryCredentialWireTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private string Credentials(string host, string user, string password, string? realmHost = null)
    {
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
        var realms = realmHost is null ? "" : $$""", "tokenRealms": ["{{realmHost}}"]""";
        var path = Path.Combine(_tmp.Path, "registries.json");
        File.WriteAllText(path, $$"""{ "auths": { "{{host}}": { "auth": "{{auth}}"{{realms}} } } }""");
        return path;
    }

    [Fact]
    public async Task A_plain_http_token_registry_on_an_insecure_pull_gets_only_anonymous_token_requests()
    {
        using var tokens = TokenServer.Start("bob", "pw");
        using var registry = await LocalRegistry.StartAsync(tokenAuth: tokens);
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        layout.Tag(layout.AddImage(TestImages.Busybox()).Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{registry.Host}/p/b:1", ("bob", "pw"));
        var before = tokens.Requests.Count;

        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")),
            new RegistryOptions { CredentialsFile = Credentials(registry.Host, "bob", "pw", $"127.0.0.1:{tokens.Port}") });
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{registry.Host}/p/b:1"), insecure: true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("never sent on an insecure pull", e.Message);
        var requests = tokens.Requests.Skip(before).ToList();
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.Null(r.User));
    }

    [Fact]
    public async Task An_https_registry_naming_a_plain_http_realm_is_refused_and_the_realm_never_asked()
    {
        using var tls = new TestTls();
        using var tokens = TokenServer.Start("bob", "pw");
        using var registry = await TlsRegistry.StartAsync(tls, token: (tokens, tokens.Realm)); // http://127.0.0.1:<port>/token
        var file = Credentials(registry.Host, "bob", "pw", $"127.0.0.1:{tokens.Port}");

        using var handler = tls.TrustingHandler();
        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")), new RegistryOptions { CredentialsFile = file }, handler);
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{registry.Host}/p/b:1"), insecure: false, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains($"token service {tokens.Realm} over plain HTTP", e.Message);
        Assert.Empty(tokens.Requests);
    }
}
