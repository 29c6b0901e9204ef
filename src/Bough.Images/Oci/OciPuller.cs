using System.Net;
using System.Text.Json;

namespace Bough.Images.Oci;

/// <summary>Pulls images from registries speaking the OCI Distribution API into a <see cref="BlobStore"/>.</summary>
/// <remarks>
/// Resolution: manifest (or index → the linux/amd64 manifest) → config → layers. Every document and blob
/// is verified against its digest before it is used or stored; blobs already in the store are not
/// downloaded again. The puller holds two HTTP clients (verifying and, for insecure registries,
/// non-verifying TLS) for its lifetime, so connections are reused across pulls.
/// </remarks>
public sealed class OciPuller(BlobStore blobs, RegistryOptions options, HttpMessageHandler? handler = null) : IDisposable
{
    private readonly Lock _gate = new();
    private HttpClient? _secure;
    private HttpClient? _insecure;

    /// <param name="insecure">Allow plain HTTP (tried after HTTPS fails) and skip TLS verification.</param>
    public async Task<ResolvedImage> PullAsync(ImageReference reference, bool insecure, IProgress<PullProgress>? progress, CancellationToken ct)
    {
        using var client = new RegistryClient(Http(insecure), reference, insecure, options);
        var tracker = new PullProgressTracker(progress, options.ProgressInterval);
        tracker.SetPhase("resolving");

        var (manifestBytes, mediaType, manifestDigest) = await ResolveManifestAsync(client, reference, ct);
        using var doc = OciDocuments.ParseJson(manifestBytes, $"manifest {manifestDigest} of {reference}");
        var manifest = OciDocuments.ParseManifest(doc.RootElement, mediaType, $"{reference}");
        await blobs.AddBytesAsync(manifestBytes, ct);

        ImageSizes.CheckDeclared(manifest, options.Limits, $"{reference}");
        var config = await FetchConfigAsync(client, manifest.Config, reference, ct);

        tracker.SetLayers(manifest.Layers.Select(l => new LayerProgress(l.Digest, l.Size, 0, "waiting")));
        tracker.SetPhase("downloading");
        await DownloadLayersAsync(client, manifest.Layers, tracker, ct);
        tracker.SetPhase("done");

        var layers = manifest.Layers.Select(l => new LayerBlob(l.Digest, l.MediaType, l.Size, blobs.PathFor(l.Digest))).ToList();
        return new ResolvedImage(reference.ToString(), manifestDigest, manifest.Config.Digest, config, layers);
    }

    /// <summary>Fetches the manifest, following an index to its linux/amd64 entry: (bytes, media type, digest).</summary>
    private static async Task<(byte[], string, string)> ResolveManifestAsync(RegistryClient client, ImageReference reference, CancellationToken ct)
    {
        var (bytes, type, digest) = await FetchVerifiedAsync(client, reference, reference.Digest ?? reference.Tag!, reference.Digest, ct);
        if (MediaTypes.IsIndex(type))
        {
            using var index = OciDocuments.ParseJson(bytes, $"index of {reference}", "registry_unavailable");
            var chosen = OciDocuments.ChoosePlatform(OciDocuments.ParseIndex(index.RootElement, $"{reference}"), $"{reference}");
            (bytes, type, digest) = await FetchVerifiedAsync(client, reference, chosen.Digest, chosen.Digest, ct);
            if (MediaTypes.IsIndex(type))
                throw new ImageException("image_unsupported", $"{reference}: the index entry for linux/amd64 is itself an index");
        }
        if (!MediaTypes.IsManifest(type))
            throw new ImageException("image_unsupported", $"{reference}: manifest media type {type} is not supported (expected an OCI or Docker v2 image manifest)");
        return (bytes, type, digest);
    }

    private static async Task<(byte[], string, string)> FetchVerifiedAsync(
        RegistryClient client, ImageReference reference, string tagOrDigest, string? expectedDigest, CancellationToken ct)
    {
        var (bytes, contentType, header) = await client.GetManifestAsync(tagOrDigest, ct);
        var actual = Digests.Of(bytes);
        if (expectedDigest is not null && actual != expectedDigest)
            throw new ImageException("image_corrupt", $"{reference}: manifest {expectedDigest} is corrupt: its content hashes to {actual}");
        if (header is not null && header.StartsWith("sha256:", StringComparison.Ordinal) && header != actual)
            throw new ImageException("image_corrupt", $"{reference}: the registry says the manifest is {header} but its content hashes to {actual}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new ImageException("registry_unavailable",
                $"{client.UrlFor($"/v2/{reference.Repository}/manifests/{tagOrDigest}")} answered with something that is not a manifest (not JSON: {e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ImageException("registry_unavailable", $"{reference}: the registry answered with JSON that is not a manifest");
            return (bytes, OciDocuments.DetectMediaType(doc.RootElement, contentType), actual);
        }
    }

    /// <summary>The config is read whole, so its declared size is checked before a byte is fetched (and the store enforces it).</summary>
    private async Task<OciImageConfig> FetchConfigAsync(RegistryClient client, Descriptor config, ImageReference reference, CancellationToken ct)
    {
        if (blobs.TryGet(config.Digest) is { } cached && new FileInfo(cached).Length != config.Size)
            throw new ImageException("image_corrupt", $"{reference}: config {config.Digest} is {new FileInfo(cached).Length} bytes, its descriptor says {config.Size}");
        if (blobs.TryGet(config.Digest) is null)
        {
            using var resp = await client.GetBlobAsync(config.Digest, ct);
            await using var body = await resp.Content.ReadAsStreamAsync(ct);
            await WriteBlobAsync(config.Digest, body, config.Size, null, client, ct);
        }
        var bytes = await blobs.TryReadAsync(config.Digest, ct)
            ?? throw new ImageException("image_corrupt", $"config {config.Digest} vanished from the blob store");
        return OciDocuments.ParseConfig(bytes, $"config {config.Digest} of {reference}");
    }

    private async Task DownloadLayersAsync(RegistryClient client, IReadOnlyList<Descriptor> layers, PullProgressTracker tracker, CancellationToken ct)
    {
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var slots = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentDownloads));
        var unique = layers.DistinctBy(l => l.Digest).ToList();
        var tasks = unique.Select(async layer =>
        {
            if (blobs.TryGet(layer.Digest) is not null)
            {
                tracker.SetState(layer.Digest, "cached", layer.Size);
                return;
            }
            await slots.WaitAsync(failFast.Token);
            try
            {
                if (blobs.TryGet(layer.Digest) is not null) // another pull stored it meanwhile
                {
                    tracker.SetState(layer.Digest, "cached", layer.Size);
                    return;
                }
                tracker.SetState(layer.Digest, "downloading", 0);
                using var resp = await client.GetBlobAsync(layer.Digest, failFast.Token);
                await using var body = await resp.Content.ReadAsStreamAsync(failFast.Token);
                await WriteBlobAsync(layer.Digest, body, layer.Size, n => tracker.SetDone(layer.Digest, n), client, failFast.Token);
                tracker.SetState(layer.Digest, "done", layer.Size);
            }
            catch
            {
                failFast.Cancel(); // one bad layer fails the pull: stop the others now
                throw;
            }
            finally
            {
                slots.Release();
            }
        }).ToList();

        try
        {
            await Task.WhenAll(tasks);
        }
        catch
        {
            ct.ThrowIfCancellationRequested();
            // Report the first real failure, not the cancellations it caused.
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault();
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }
    }

    private async Task WriteBlobAsync(string digest, Stream body, long size, Action<long>? onBytes, RegistryClient client, CancellationToken ct)
    {
        // Re-armed on every chunk: only a connection that goes quiet trips it.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(options.StallTimeout);
        try
        {
            await blobs.WriteAsync(digest, body, size, n =>
            {
                stall.CancelAfter(options.StallTimeout);
                onBytes?.Invoke(n);
            }, stall.Token);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new ImageException("registry_unavailable",
                $"download of blob {digest} from {client.UrlFor("")} stalled: no data for {options.StallTimeout.TotalSeconds:0} s", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
        {
            throw new ImageException("registry_unavailable",
                $"download of blob {digest} from {client.UrlFor("")} broke off: {e.Message}", e);
        }
    }

    private HttpClient Http(bool insecure)
    {
        lock (_gate)
        {
            ref var slot = ref insecure ? ref _insecure : ref _secure;
            return slot ??= Create(insecure);
        }
    }

    private HttpClient Create(bool insecure)
    {
        HttpMessageHandler h = handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = true, // blob GETs are commonly redirected to object storage
            AutomaticDecompression = DecompressionMethods.None, // digests are over the bytes as served
            ConnectTimeout = TimeSpan.FromSeconds(30),
#pragma warning disable CA5359 // Only for a pull the caller marked insecure (a local or lab registry with a self-signed certificate).
            SslOptions = insecure ? new() { RemoteCertificateValidationCallback = (_, _, _, _) => true } : new(),
#pragma warning restore CA5359
        };
        return new HttpClient(h, disposeHandler: handler is null)
        {
            Timeout = options.RequestTimeout,
            DefaultRequestHeaders = { { "User-Agent", "bough/0.1" } },
        };
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _secure?.Dispose();
            _insecure?.Dispose();
            _secure = _insecure = null;
        }
    }
}
