using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Bough.Contracts;
using Bough.TestSupport.Registry;

namespace Bough.Integration.Tests;

/// <summary>A real docker-registry for the image tests, and building/pushing small busybox images to it.</summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    public LocalRegistry Registry { get; private set; } = null!;

    public async Task InitializeAsync() => Registry = await LocalRegistry.StartAsync();

    public Task DisposeAsync()
    {
        Registry.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Builds an OCI layout with <paramref name="build"/> (which tags what it wants pushed as "t") and pushes it as <c>repo:tag</c>.</summary>
    public async Task<string> PushAsync(string repoTag, Action<OciLayoutBuilder> build)
    {
        using var layout = new TempDir("it-layout");
        var dir = layout.Path;
        build(new OciLayoutBuilder(dir));
        var reference = $"{Registry.Host}/{repoTag}";
        await Skopeo.PushAsync(dir, "t", reference);
        return reference;
    }

    /// <summary>Pushes one image; returns the reference and the built manifest.</summary>
    public async Task<(string Ref, BuiltImage Image)> PushImageAsync(string repoTag, ImageSpec spec)
    {
        BuiltImage? built = null;
        var reference = await PushAsync(repoTag, b =>
        {
            built = b.AddImage(spec);
            b.Tag(built.Manifest, "t");
        });
        return (reference, built!);
    }
}

/// <summary>Raw HTTP for the image and template API, so the tests see the exact statuses (200/201/202) and problems.</summary>
internal static class ImageApi
{
    public static readonly JsonSerializerOptions Json = BoughJson.Options;

    public static async Task<(HttpStatusCode Status, Image Image)> PullAsync(HttpClient http, string reference, bool async = false)
    {
        using var r = await http.PostAsJsonAsync("/v1/images" + (async ? "?async=true" : ""),
            new PullImageRequest { Ref = reference, Insecure = true }, Json);
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"pull {reference}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return (r.StatusCode, (await r.Content.ReadFromJsonAsync<Image>(Json))!);
    }

    public static string Path(string name) => "/v1/images/" + string.Join('/', name.Split('/').Select(Uri.EscapeDataString));

    public static async Task<Image> GetAsync(HttpClient http, string name)
    {
        using var r = await http.GetAsync(Path(name));
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"GET {name}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return (await r.Content.ReadFromJsonAsync<Image>(Json))!;
    }

    /// <summary>Polls GET until the image is ready (or throws with its error when it failed).</summary>
    public static async Task<Image> WaitReadyAsync(HttpClient http, string name, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var image = await GetAsync(http, name);
            if (image.State == ImageStates.Ready) return image;
            if (image.State == ImageStates.Failed)
                throw new InvalidOperationException($"{name} failed: {image.Error?.Code}: {image.Error?.Detail}");
            if (sw.Elapsed > timeout) throw new TimeoutException($"{name} still {image.State} ({image.Phase}) after {timeout}");
            await Task.Delay(500);
        }
    }

    public static async Task<Sandbox> CreateAsync(HttpClient http, CreateSandboxRequest request)
    {
        using var r = await http.PostAsJsonAsync("/v1/sandboxes", request, Json);
        if (r.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"create: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return (await r.Content.ReadFromJsonAsync<Sandbox>(Json))!;
    }

    public static async Task<ExecResult> ExecAsync(HttpClient http, string id, ExecRequest request)
    {
        using var r = await http.PostAsJsonAsync($"/v1/sandboxes/{id}/exec", request, Json);
        if (r.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"exec: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return (await r.Content.ReadFromJsonAsync<ExecResult>(Json))!;
    }

    public static async Task<string> RunAsync(HttpClient http, string id, params string[] cmd)
    {
        var r = await ExecAsync(http, id, new ExecRequest { Cmd = [.. cmd] });
        Assert.True(r.ExitCode == 0, $"[{string.Join(' ', cmd)}] exited {r.ExitCode}: {r.Stderr}{r.Stdout}");
        return r.Stdout;
    }

    public static async Task DeleteSandboxQuietlyAsync(HttpClient http, string id)
    {
        using var _ = await http.DeleteAsync($"/v1/sandboxes/{id}");
    }

    /// <summary>Published image directories of a daemon (images/oci/&lt;id&gt;, staging excluded).</summary>
    public static IReadOnlyList<string> PublishedDirs(string dataDir)
    {
        var root = System.IO.Path.Combine(dataDir, "images", "oci");
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).Where(d => !System.IO.Path.GetFileName(d).StartsWith('.')).ToList()
            : [];
    }
}
