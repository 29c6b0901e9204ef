using System.Collections.Concurrent;
using System.Text;
using Bough.Images.Oci;
using Bough.Images.Tests.Oci.Tls;
using Bough.TestSupport.Registry;
using Xunit.Abstractions;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// One real registry (plain HTTP, no auth) with images pushed by skopeo: a busybox image (gzip +
/// zstd + plain tar layers), a multi-arch index and an arm64-only index.
/// </summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    public LocalRegistry Registry { get; private set; } = null!;
    public TempDir Temp { get; } = new();
    public BuiltImage Busybox { get; private set; } = null!;
    public BuiltImage MultiAmd64 { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Registry = await LocalRegistry.StartAsync();
        var layout = new OciLayoutBuilder(Path.Combine(Temp.Path, "layout"));
        Busybox = layout.AddImage(TestImages.Busybox(
            new LayerSpec([TarItem.File("etc/motd", "from a zstd layer\n")], LayerCompression.Zstd),
            new LayerSpec([TarItem.Whiteout("bin/cat"), TarItem.File("etc/plain", "plain tar")], LayerCompression.None)));
        layout.Tag(Busybox.Manifest, "busybox");

        MultiAmd64 = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("arch", "amd64")])) with { Env = ["ARCH=amd64"] });
        var arm = layout.AddImage(new ImageSpec([new LayerSpec([TarItem.File("arch", "arm64")])]) { Architecture = "arm64", Env = ["ARCH=arm64"] });
        layout.Tag(layout.AddIndex(arm, MultiAmd64), "multi");
        layout.Tag(layout.AddIndex(arm), "armonly");

        await Skopeo.PushAsync(layout.Dir, "busybox", $"{Registry.Host}/test/busybox:1");
        await Skopeo.PushAsync(layout.Dir, "multi", $"{Registry.Host}/test/multi:1");
        await Skopeo.PushAsync(layout.Dir, "armonly", $"{Registry.Host}/test/armonly:1");
    }

    public Task DisposeAsync()
    {
        Registry.Dispose();
        Temp.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class RegistryPullTests(RegistryFixture fx, ITestOutputHelper output) : IClassFixture<RegistryFixture>, IDisposable
{
    private readonly TempDir _data = new();

    public void Dispose() => _data.Dispose();

    private (OciPuller Puller, BlobStore Blobs) NewPuller(string? credentialsFile = null)
    {
        var blobs = new BlobStore(_data.Path);
        return (new OciPuller(blobs, new RegistryOptions { CredentialsFile = credentialsFile, RequestTimeout = TimeSpan.FromSeconds(20) }), blobs);
    }

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool, out of order).</summary>
    private sealed class Recorder : IProgress<PullProgress>
    {
        public ConcurrentQueue<PullProgress> Reports { get; } = new();
        public void Report(PullProgress value) => Reports.Enqueue(value);
    }

    [Fact]
    public async Task Pulls_busybox_into_the_cache_and_the_layers_flatten_to_a_root()
    {
        var (puller, blobs) = NewPuller();
        using var _ = puller;
        var progress = new Recorder();
        var image = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox:1"), insecure: true, progress, CancellationToken.None);

        Assert.Equal($"{fx.Registry.Host}/test/busybox:1", image.Reference);
        // skopeo gzips the uncompressed layer on push, so the manifest differs from the layout's; the config does not.
        Assert.Equal(fx.Busybox.Config.Digest, image.ConfigDigest);
        Assert.Equal(["PATH=/bin", "GREETING=hello world"], image.Config.Env);
        Assert.Equal("/home/app", image.Config.WorkingDir);
        Assert.Equal("app", image.Config.User);
        Assert.Equal(["/bin/sh", "-c", "echo hi"], image.Config.Cmd);
        Assert.Null(image.Config.Entrypoint);
        Assert.Equal(3, image.Layers.Count);
        Assert.EndsWith("tar+zstd", image.Layers[1].MediaType);
        foreach (var d in image.Layers.Select(l => l.Digest).Append(image.ConfigDigest).Append(image.ManifestDigest))
            Assert.NotNull(blobs.TryGet(d));
        Assert.Empty(Directory.GetFiles(blobs.StagingDir));

        var last = progress.Reports.Last();
        Assert.Equal("done", last.Phase);
        Assert.All(last.Layers, l => Assert.Equal("done", l.State));
        Assert.Contains(progress.Reports, r => r.Phase == "downloading");

        var root = Path.Combine(_data.Path, "rootfs");
        foreach (var layer in image.Layers) await LayerFlattener.ApplyAsync(layer, root, CancellationToken.None);
        Assert.Equal(await File.ReadAllBytesAsync(TestImages.HostBusybox), await File.ReadAllBytesAsync(Path.Combine(root, "bin/busybox")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(root, "bin/sh")).LinkTarget);
        Assert.Equal("from a zstd layer\n", File.ReadAllText(Path.Combine(root, "etc/motd")));
        Assert.False(File.Exists(Path.Combine(root, "bin/cat")) || new FileInfo(Path.Combine(root, "bin/cat")).LinkTarget is not null);
        Assert.Equal((UnixFileMode)0b1_111_111_111, File.GetUnixFileMode(Path.Combine(root, "tmp")));

        // Second pull: everything is cached, nothing downloads.
        var again = new Recorder();
        var second = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox:1"), true, again, CancellationToken.None);
        Assert.Equal(image.ManifestDigest, second.ManifestDigest);
        Assert.All(again.Reports.Last().Layers, l => Assert.Equal("cached", l.State));
        Assert.DoesNotContain(again.Reports.SelectMany(r => r.Layers), l => l.State == "downloading");
    }

    [Fact]
    public async Task Pull_by_digest_verifies_the_manifest()
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var byTag = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox:1"), true, null, CancellationToken.None);
        var byDigest = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox@{byTag.ManifestDigest}"), true, null, CancellationToken.None);
        Assert.Equal(byTag.ManifestDigest, byDigest.ManifestDigest);
        Assert.Equal($"{fx.Registry.Host}/test/busybox@{byTag.ManifestDigest}", byDigest.Reference);

        var unknown = "sha256:" + new string('a', 64);
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox@{unknown}"), true, null, CancellationToken.None));
        Assert.Equal("image_ref_not_found", e.Code);
    }

    [Fact]
    public async Task Multi_arch_index_picks_linux_amd64()
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var image = await puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/multi:1"), true, null, CancellationToken.None);
        Assert.Equal(fx.MultiAmd64.Manifest.Digest, image.ManifestDigest);
        Assert.Equal(["ARCH=amd64"], image.Config.Env);
    }

    [Fact]
    public async Task Index_without_amd64_is_image_unsupported_listing_platforms()
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/armonly:1"), true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("image_unsupported", e.Code);
        Assert.Contains("linux/arm64", e.Message);
    }

    [Theory]
    [InlineData("test/busybox:nope")]
    [InlineData("test/nothere:latest")]
    public async Task Unknown_tag_or_repository_is_image_ref_not_found(string path)
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/{path}"), true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("image_ref_not_found", e.Code);
        Assert.Equal($"{fx.Registry.Host}/{path}: not found in registry", e.Message);
    }

    [Fact]
    public async Task Plain_http_registry_without_insecure_is_unavailable_with_a_hint()
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox:1"), insecure: false, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unavailable", e.Code);
        Assert.Contains($"https://{fx.Registry.Host}/v2/", e.Message);
        Assert.Contains("insecure", e.Message);
    }

    [Fact]
    public async Task Nothing_listening_is_unavailable_with_the_url()
    {
        var (puller, _) = NewPuller();
        using var __ = puller;
        var port = FreePort();
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"127.0.0.1:{port}/x:1"), true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unavailable", e.Code);
        Assert.Contains($"127.0.0.1:{port}/v2/x/manifests/1", e.Message);
    }

    [Fact]
    public async Task Cancelled_pull_leaves_no_partial_files()
    {
        var (puller, blobs) = NewPuller();
        using var __ = puller;
        using var cts = new CancellationTokenSource();
        var progress = new CancelOnDownload(cts);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            puller.PullAsync(ImageReference.Parse($"{fx.Registry.Host}/test/busybox:1"), true, progress, cts.Token));
        Assert.Empty(Directory.GetFiles(blobs.StagingDir));
    }

    private sealed class CancelOnDownload(CancellationTokenSource cts) : IProgress<PullProgress>
    {
        public void Report(PullProgress value)
        {
            if (value.Layers.Any(l => l.State == "downloading")) cts.Cancel();
        }
    }

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var p = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return p;
    }
}

/// <summary>Tests that change the registry's stored bytes get a registry of their own.</summary>
public sealed class RegistryCorruptionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Corrupted_blob_in_registry_storage_is_rejected_and_not_cached()
    {
        using var registry = await LocalRegistry.StartAsync();
        using var tmp = new TempDir();
        var layout = new OciLayoutBuilder(Path.Combine(tmp.Path, "layout"));
        var image = layout.AddImage(new ImageSpec([new LayerSpec([TarItem.File("data", new string('d', 50_000))])]));
        layout.Tag(image.Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{registry.Host}/corrupt/me:1");

        // Flip bytes of the layer as the registry stores it: it will serve them as they are.
        var stored = registry.BlobDataPath(image.Layers[0].Digest);
        var bytes = await File.ReadAllBytesAsync(stored);
        for (var i = bytes.Length / 2; i < bytes.Length / 2 + 16; i++) bytes[i] ^= 0xff;
        await File.WriteAllBytesAsync(stored, bytes);

        var blobs = new BlobStore(Path.Combine(tmp.Path, "data"));
        using var puller = new OciPuller(blobs, new RegistryOptions());
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            puller.PullAsync(ImageReference.Parse($"{registry.Host}/corrupt/me:1"), true, null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Equal("image_corrupt", e.Code);
        Assert.Contains(image.Layers[0].Digest, e.Message);
        Assert.Null(blobs.TryGet(image.Layers[0].Digest));
        Assert.Empty(Directory.GetFiles(blobs.StagingDir));
    }
}

/// <summary>
/// Registries with htpasswd Basic auth: one over plain HTTP (registry 2.8 accepts that) behind a recording
/// tunnel, so a test sees what went over the wire in clear, and one over HTTPS verified against the test CA.
/// </summary>
public sealed class AuthRegistryFixture : IAsyncLifetime, IDisposable
{
    public const string User = "alice";
    public const string Password = "s3cret-pass";
    public const string Repository = "private/busybox";
    public TestTls Tls { get; } = new();
    public LocalRegistry Plain { get; private set; } = null!;
    public LoopbackTunnel PlainWire { get; private set; } = null!;
    public TlsRegistry Secure { get; private set; } = null!;
    private readonly TempDir _tmp = new();

    public async Task InitializeAsync()
    {
        Plain = await LocalRegistry.StartAsync((User, Password));
        PlainWire = new LoopbackTunnel(Plain.Port);
        Secure = await TlsRegistry.StartAsync(Tls, basicAuth: (User, Password));
        var layout = new OciLayoutBuilder(Path.Combine(_tmp.Path, "layout"));
        var image = layout.AddImage(TestImages.Busybox());
        layout.Tag(image.Manifest, "v1");
        await Skopeo.PushAsync(layout.Dir, "v1", $"{Plain.Host}/{Repository}:1", (User, Password));
        await Skopeo.PushAsync(layout.Dir, "v1", $"{Secure.Host}/{Repository}:1", (User, Password));
    }

    public Task DisposeAsync()
    {
        PlainWire.Dispose();
        Plain.Dispose();
        Secure.Dispose();
        Tls.Dispose();
        _tmp.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Idempotent (xUnit may call both this and <see cref="DisposeAsync"/>).</summary>
    public void Dispose() => _tmp.Dispose();
}

public sealed class RegistryAuthTests(AuthRegistryFixture fx, ITestOutputHelper output) : IClassFixture<AuthRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private async Task<ResolvedImage> PullAsync(string host, string? credentialsFile, bool insecure)
    {
        using var handler = fx.Tls.TrustingHandler();
        using var puller = new OciPuller(new BlobStore(Path.Combine(_tmp.Path, "data")), new RegistryOptions { CredentialsFile = credentialsFile }, handler);
        return await puller.PullAsync(ImageReference.Parse($"{host}/{AuthRegistryFixture.Repository}:1"), insecure, null, CancellationToken.None);
    }

    private string WriteCredentials(string json)
    {
        var path = Path.Combine(_tmp.Path, "registries.json");
        File.WriteAllText(path, json);
        return path;
    }

    private string Base64Credentials(string host) =>
        WriteCredentials($$"""{ "auths": { "{{host}}": { "auth":"{{Convert.ToBase64String(Encoding.UTF8.GetBytes($"{AuthRegistryFixture.User}:{AuthRegistryFixture.Password}"))}}" } } }""");

    [Fact]
    public async Task Without_credentials_is_registry_unauthorized()
    {
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(fx.Secure.Host, null, insecure: false));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("no credentials were sent", e.Message);

        var file = WriteCredentials("""{"auths":{"other.example:5000":{"auth":"eDp5"}}}""");
        e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(fx.Secure.Host, file, insecure: false));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains(file, e.Message);
        Assert.Contains($"has no entry for {fx.Secure.Host}", e.Message);
    }

    [Fact]
    public async Task Over_verified_https_with_base64_auth_in_the_credentials_file_it_pulls()
    {
        var image = await PullAsync(fx.Secure.Host, Base64Credentials(fx.Secure.Host), insecure: false);
        Assert.Equal("app", image.Config.User);
    }

    [Fact]
    public async Task Over_verified_https_with_username_and_password_fields_and_a_url_key_it_pulls()
    {
        var file = WriteCredentials($$"""{ "auths": { "https://{{fx.Secure.Host}}/v1/": { "username":"{{AuthRegistryFixture.User}}","password":"{{AuthRegistryFixture.Password}}" } } }""");
        var image = await PullAsync(fx.Secure.Host, file, insecure: false);
        Assert.Single(image.Layers);
    }

    [Fact]
    public async Task Wrong_password_is_unauthorized_saying_credentials_were_sent()
    {
        var file = WriteCredentials($$"""{ "auths": { "{{fx.Secure.Host}}": { "username":"alice","password":"wrong" } } }""");
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(fx.Secure.Host, file, insecure: false));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("credentials for user 'alice'", e.Message);
        Assert.Contains("were sent", e.Message);
        Assert.Contains(file, e.Message);
        Assert.DoesNotContain("wrong", e.Message);
    }

    [Fact]
    public async Task Credentials_never_go_over_plain_http_and_the_error_says_why()
    {
        var host = $"127.0.0.1:{fx.PlainWire.Port}";
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(host, Base64Credentials(host), insecure: true));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("were not sent", e.Message);
        Assert.Contains("insecure pull", e.Message);
        var wire = fx.PlainWire.ClientBytes;
        Assert.Contains($"GET /v2/{AuthRegistryFixture.Repository}/manifests/1", wire); // the pull did go this way
        Assert.DoesNotContain("Authorization", wire, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Credentials_never_go_over_unverified_tls_either()
    {
        // insecure: the certificate is not checked, so anyone in the middle could read them.
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(fx.Secure.Host, Base64Credentials(fx.Secure.Host), insecure: true));
        output.WriteLine(e.Message);
        Assert.Equal("registry_unauthorized", e.Code);
        Assert.Contains("never sent on an insecure pull", e.Message);
    }
}
