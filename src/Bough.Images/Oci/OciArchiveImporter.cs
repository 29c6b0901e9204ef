using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bough.Images.Oci;

/// <summary>Imports an OCI image layout directory or a <c>docker save</c> tar into a <see cref="BlobStore"/>.</summary>
/// <remarks>
/// Accepted inputs: an OCI layout directory (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/</c>), a tar
/// of one, or a <c>docker save</c> tar (<c>manifest.json</c> with Config/RepoTags/Layers; newer Docker writes
/// both shapes, and then manifest.json wins because its RepoTags carry the full name). Every blob is
/// verified against its digest while it is copied into the store. A <c>docker save</c> has no registry
/// manifest, so one is written (OCI, same config and layers) to give the image a manifest digest.
/// Documents, the config and layer sizes are capped by <see cref="ImageLimits"/> before they are read.
/// </remarks>
public sealed class OciArchiveImporter(BlobStore blobs, ImageLimits? limits = null)
{
    private readonly ImageLimits _limits = limits ?? new ImageLimits();

    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private const string ContainerdNameAnnotation = "io.containerd.image.name";

    public async Task<ResolvedImage> ImportAsync(string path, IProgress<PullProgress>? progress, CancellationToken ct)
    {
        using var source = await OpenAsync(path, ct);
        if (source.Exists("manifest.json"))
            return await ImportDockerSaveAsync(source, progress, ct);
        if (source.Exists("index.json"))
            return await ImportLayoutAsync(source, progress, ct);
        throw new ImageException("invalid_request",
            $"{path} is neither an OCI image layout (index.json) nor a docker save archive (manifest.json)");
    }

    private async Task<IArchiveSource> OpenAsync(string path, CancellationToken ct)
    {
        if (Directory.Exists(path)) return new DirectoryArchiveSource(path);
        if (File.Exists(path)) return await TarArchiveSource.OpenAsync(path, blobs.StagingDir, _limits.MaxImageBytes, ct);
        throw new ImageException("invalid_request", $"{path}: no such file or directory");
    }

    private async Task<ResolvedImage> ImportLayoutAsync(IArchiveSource source, IProgress<PullProgress>? progress, CancellationToken ct)
    {
        if (source.Exists("oci-layout"))
        {
            using var layout = OciDocuments.ParseJson(await source.ReadSmallAsync("oci-layout", _limits.MaxDocumentBytes, nameof(ImageLimits.MaxDocumentBytes), ct), $"{source.Description}: oci-layout");
            if (!layout.RootElement.TryGetProperty("imageLayoutVersion", out var v) || v.GetString() != "1.0.0")
                throw new ImageException("image_unsupported", $"{source.Description}: oci-layout imageLayoutVersion is not 1.0.0");
        }
        using var indexDoc = OciDocuments.ParseJson(await source.ReadSmallAsync("index.json", _limits.MaxDocumentBytes, nameof(ImageLimits.MaxDocumentBytes), ct), $"{source.Description}: index.json");
        var top = OciDocuments.ParseIndex(indexDoc.RootElement, $"{source.Description}: index.json");
        var chosen = top.Count == 1 ? top[0] : OciDocuments.ChoosePlatform(top, $"{source.Description}: index.json");
        var reference = ReferenceFrom(chosen.Annotations);

        // Follow nested indexes (skopeo --all writes the multi-arch index as a blob) to one manifest.
        for (var depth = 0; MediaTypes.IsIndex(chosen.MediaType); depth++)
        {
            if (depth > 4) throw new ImageException("image_unsupported", $"{source.Description}: indexes nested too deep");
            var bytes = await ReadVerifiedAsync(source, chosen, _limits.MaxDocumentBytes, nameof(ImageLimits.MaxDocumentBytes), ct);
            using var nested = OciDocuments.ParseJson(bytes, $"{source.Description}: index {chosen.Digest}");
            chosen = OciDocuments.ChoosePlatform(OciDocuments.ParseIndex(nested.RootElement, $"index {chosen.Digest}"), $"{source.Description}: index {chosen.Digest}");
        }

        var manifestBytes = await ReadVerifiedAsync(source, chosen, _limits.MaxDocumentBytes, nameof(ImageLimits.MaxDocumentBytes), ct);
        using var manifestDoc = OciDocuments.ParseJson(manifestBytes, $"{source.Description}: manifest {chosen.Digest}");
        var mediaType = OciDocuments.DetectMediaType(manifestDoc.RootElement, chosen.MediaType);
        if (!MediaTypes.IsManifest(mediaType))
            throw new ImageException("image_unsupported", $"{source.Description}: {chosen.Digest} has media type {mediaType}, not an image manifest");
        var manifest = OciDocuments.ParseManifest(manifestDoc.RootElement, mediaType, $"{source.Description}: manifest {chosen.Digest}");
        await blobs.AddBytesAsync(manifestBytes, ct);

        ImageSizes.CheckDeclared(manifest, _limits, source.Description);
        var configBytes = await ReadVerifiedAsync(source, manifest.Config, _limits.MaxConfigBytes, nameof(ImageLimits.MaxConfigBytes), ct);
        await blobs.AddBytesAsync(configBytes, ct);
        var config = OciDocuments.ParseConfig(configBytes, $"{source.Description}: config {manifest.Config.Digest}");

        var tracker = new PullProgressTracker(progress, TimeSpan.FromMilliseconds(100));
        tracker.SetLayers(manifest.Layers.Select(l => new LayerProgress(l.Digest, l.Size, 0, "waiting")));
        tracker.SetPhase("importing");
        foreach (var layer in manifest.Layers.DistinctBy(l => l.Digest))
        {
            if (blobs.TryGet(layer.Digest) is not null)
            {
                tracker.SetState(layer.Digest, "cached", layer.Size);
                continue;
            }
            tracker.SetState(layer.Digest, "downloading", 0);
            await using var s = source.Open(BlobName(layer.Digest));
            await blobs.WriteAsync(layer.Digest, s, layer.Size, n => tracker.SetDone(layer.Digest, n), ct);
            tracker.SetState(layer.Digest, "done", layer.Size);
        }
        tracker.SetPhase("done");

        var layers = manifest.Layers.Select(l => new LayerBlob(l.Digest, l.MediaType, l.Size, blobs.PathFor(l.Digest))).ToList();
        return new ResolvedImage(reference, chosen.Digest, manifest.Config.Digest, config, layers);
    }

    private async Task<ResolvedImage> ImportDockerSaveAsync(IArchiveSource source, IProgress<PullProgress>? progress, CancellationToken ct)
    {
        var what = $"{source.Description}: manifest.json";
        JsonNode? root;
        try { root = JsonNode.Parse(await source.ReadSmallAsync("manifest.json", _limits.MaxDocumentBytes, nameof(ImageLimits.MaxDocumentBytes), ct)); }
        catch (JsonException e) { throw new ImageException("image_corrupt", $"{what} is not valid JSON: {e.Message}", e); }
        if (root is not JsonArray { Count: > 0 } images || images[0] is not JsonObject image)
            throw new ImageException("image_corrupt", $"{what} lists no image");
        // A save of several images: the first is imported (the CLI names one image per import).
        var configName = (string?)image["Config"] ?? throw new ImageException("image_corrupt", $"{what} has no Config");
        var layerNames = image["Layers"] is JsonArray la ? la.Select(n => (string?)n ?? "").ToList()
            : throw new ImageException("image_corrupt", $"{what} has no Layers");
        var repoTag = image["RepoTags"] is JsonArray { Count: > 0 } tags ? (string?)tags[0] : null;

        var configBytes = await source.ReadSmallAsync(configName, _limits.MaxConfigBytes, nameof(ImageLimits.MaxConfigBytes), ct);
        var configDigest = Digests.Of(configBytes);
        if (DigestFromName(configName) is { } named && named != configDigest)
            throw new ImageException("image_corrupt", $"{source.Description}: config {configName} is corrupt: its content hashes to {configDigest}");
        var config = OciDocuments.ParseConfig(configBytes, $"{source.Description}: config {configName}");
        var diffIds = DiffIds(configBytes);
        if (diffIds is not null && diffIds.Count != layerNames.Count)
            throw new ImageException("image_corrupt", $"{source.Description}: config lists {diffIds.Count} layers but manifest.json {layerNames.Count}");
        await blobs.AddBytesAsync(configBytes, ct);

        var tracker = new PullProgressTracker(progress, TimeSpan.FromMilliseconds(100));
        tracker.SetPhase("importing");
        var layers = new List<LayerBlob>();
        long total = 0;
        for (var i = 0; i < layerNames.Count; i++)
        {
            var name = layerNames[i];
            await using var member = source.Open(name);
            // No descriptor declares these sizes: count while copying, and stop at a cap.
            await using var s = new CountedReadStream(member, (layerBytes, n) => total = CheckLayerBytes(source, name, layerBytes, total + n));
            var (digest, size, stored) = await blobs.AddAsync(s, ct);
            if (DigestFromName(name) is { } expected && expected != digest)
                throw Corrupt(source, name, expected, digest, stored);
            var mediaType = await LayerMediaTypeAsync(stored, ct);
            // An uncompressed layer's digest is its diff id: that is what the config vouches for.
            if (mediaType == MediaTypes.OciLayerTar && diffIds is not null && diffIds[i] != digest)
                throw Corrupt(source, name, diffIds[i], digest, stored);
            layers.Add(new LayerBlob(digest, mediaType, size, stored));
            tracker.SetLayers(layers.Select(l => new LayerProgress(l.Digest, l.Size, l.Size, "done")));
        }
        tracker.SetPhase("done");

        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = new JsonObject { ["mediaType"] = MediaTypes.OciConfig, ["digest"] = configDigest, ["size"] = configBytes.Length },
            ["layers"] = new JsonArray(layers.Select(l => (JsonNode)new JsonObject
            {
                ["mediaType"] = l.MediaType, ["digest"] = l.Digest, ["size"] = l.Size,
            }).ToArray()),
        };
        var manifestDigest = await blobs.AddBytesAsync(System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString()), ct);
        return new ResolvedImage(NormaliseOrNull(repoTag), manifestDigest, configDigest, config, layers);
    }

    private long CheckLayerBytes(IArchiveSource source, string name, long layerBytes, long total)
    {
        if (layerBytes > _limits.MaxLayerBytes)
            throw new ImageException("layer_rejected", $"{source.Description}: layer {name} is more than {_limits.MaxLayerBytes} bytes (image limit MaxLayerBytes)");
        if (total > _limits.MaxImageBytes)
            throw new ImageException("layer_rejected", $"{source.Description}: the layers are more than {_limits.MaxImageBytes} bytes (image limit MaxImageBytes)");
        return total;
    }

    private static async Task<byte[]> ReadVerifiedAsync(IArchiveSource source, Descriptor d, int maxBytes, string limitName, CancellationToken ct)
    {
        var bytes = await source.ReadSmallAsync(BlobName(d.Digest), maxBytes, limitName, ct);
        var actual = Digests.Of(bytes);
        if (actual != d.Digest || bytes.Length != d.Size)
            throw new ImageException("image_corrupt",
                $"{source.Description}: blob {d.Digest} is corrupt: its content ({bytes.Length} bytes) hashes to {actual}");
        return bytes;
    }

    private static ImageException Corrupt(IArchiveSource source, string name, string expected, string actual, string stored)
    {
        // The blob is stored under its real digest, which is harmless, but the image is refused.
        _ = stored;
        return new ImageException("image_corrupt", $"{source.Description}: layer {name} is corrupt: expected {expected}, its content hashes to {actual}");
    }

    private static string BlobName(string digest) => "blobs/sha256/" + Digests.Hex(digest);

    /// <summary><c>blobs/sha256/&lt;hex&gt;</c> or <c>&lt;hex&gt;.json</c> name their digest; legacy layer paths do not.</summary>
    private static string? DigestFromName(string name)
    {
        var file = name[(name.LastIndexOf('/') + 1)..];
        if (file.EndsWith(".json", StringComparison.Ordinal)) file = file[..^5];
        var digest = "sha256:" + file;
        return Digests.IsValid(digest) && (name.StartsWith("blobs/sha256/", StringComparison.Ordinal) || !name.Contains('/')) ? digest : null;
    }

    private static List<string>? DiffIds(byte[] config)
    {
        using var doc = JsonDocument.Parse(config);
        if (!doc.RootElement.TryGetProperty("rootfs", out var rootfs) || !rootfs.TryGetProperty("diff_ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
            return null;
        return ids.EnumerateArray().Select(x => x.GetString() ?? "").ToList();
    }

    private static async Task<string> LayerMediaTypeAsync(string path, CancellationToken ct)
    {
        await using var f = File.OpenRead(path);
        var b = new byte[4];
        var n = await f.ReadAtLeastAsync(b, 4, false, ct);
        if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return MediaTypes.OciLayerGzip;
        if (n == 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return MediaTypes.OciLayerZstd;
        return MediaTypes.OciLayerTar;
    }

    /// <summary>
    /// The name an OCI layout gives its image. <c>io.containerd.image.name</c> is always a full reference;
    /// <c>org.opencontainers.image.ref.name</c> is often only a tag ("latest", as skopeo and docker write it),
    /// which names no repository, so it counts only when it parses as a name with a repository part.
    /// </summary>
    private static string? ReferenceFrom(IReadOnlyDictionary<string, string> annotations)
    {
        if (annotations.TryGetValue(ContainerdNameAnnotation, out var full) && NormaliseOrNull(full) is { } r) return r;
        if (annotations.TryGetValue(RefNameAnnotation, out var name) && (name.Contains('/') || name.Contains(':') || name.Contains('@')))
            return NormaliseOrNull(name);
        return null;
    }

    private static string? NormaliseOrNull(string? reference)
    {
        if (string.IsNullOrEmpty(reference)) return null;
        try { return ImageReference.Parse(reference).ToString(); }
        catch (ImageException) { return null; }
    }
}
