using System.Text.Json;

namespace Bough.Images.Oci;

/// <summary>A content descriptor (manifest, config or layer reference).</summary>
internal sealed record Descriptor(string MediaType, string Digest, long Size, string? Os, string? Architecture,
    string? Variant, IReadOnlyDictionary<string, string> Annotations)
{
    public string PlatformText => Os is null && Architecture is null ? "unknown" : $"{Os}/{Architecture}" + (Variant is null ? "" : "/" + Variant);
}

/// <summary>An image manifest (OCI or Docker v2): one config and ordered layers.</summary>
internal sealed record ImageManifest(string MediaType, Descriptor Config, IReadOnlyList<Descriptor> Layers);

/// <summary>
/// Parsing of the OCI/Docker JSON documents shared by the puller and the importer. Every document
/// comes from an untrusted source, so each failure is an <see cref="ImageException"/> naming what was
/// wrong, never a JSON exception.
/// </summary>
internal static class OciDocuments
{
    public const string TargetOs = "linux";
    public const string TargetArch = "amd64";

    /// <summary>The document's media type: its <c>mediaType</c> field, else the transport's, else inferred from its shape.</summary>
    public static string DetectMediaType(JsonElement root, string? transportType)
    {
        if (root.TryGetProperty("mediaType", out var mt) && mt.ValueKind == JsonValueKind.String && mt.GetString() is { Length: > 0 } s)
            return s;
        if (transportType is { Length: > 0 } t && t != "application/json" && t != "application/octet-stream") return t;
        if (root.TryGetProperty("manifests", out _)) return MediaTypes.OciIndex;
        if (root.TryGetProperty("layers", out _)) return MediaTypes.OciManifest;
        return transportType ?? "unknown";
    }

    public static JsonDocument ParseJson(byte[] bytes, string what, string code = "image_corrupt")
    {
        try
        {
            var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ImageException(code, $"{what} is not a JSON object");
            return doc;
        }
        catch (JsonException e)
        {
            throw new ImageException(code, $"{what} is not valid JSON: {e.Message}", e);
        }
    }

    public static IReadOnlyList<Descriptor> ParseIndex(JsonElement root, string what)
    {
        if (!root.TryGetProperty("manifests", out var list) || list.ValueKind != JsonValueKind.Array)
            throw new ImageException("image_corrupt", $"{what}: image index has no 'manifests' array");
        return list.EnumerateArray().Select(e => ParseDescriptor(e, $"{what}: manifests entry")).ToList();
    }

    public static ImageManifest ParseManifest(JsonElement root, string mediaType, string what)
    {
        if (!root.TryGetProperty("config", out var config) || config.ValueKind != JsonValueKind.Object)
            throw new ImageException("image_corrupt", $"{what}: manifest has no 'config'");
        if (!root.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array)
            throw new ImageException("image_corrupt", $"{what}: manifest has no 'layers' array");
        var cfg = ParseDescriptor(config, $"{what}: config");
        if (cfg.MediaType is not (MediaTypes.OciConfig or MediaTypes.DockerConfig))
            throw new ImageException("image_unsupported",
                $"{what}: config media type {cfg.MediaType} is not a container image config (this is an artifact, not an image)");
        var ls = layers.EnumerateArray().Select(e => ParseDescriptor(e, $"{what}: layer")).ToList();
        foreach (var l in ls)
            if (MediaTypes.LayerProblem(l.MediaType) is { } problem)
                throw new ImageException("image_unsupported", $"{what}: {problem} ({l.Digest})");
        return new ImageManifest(mediaType, cfg, ls);
    }

    /// <summary>Picks the linux/amd64 entry of an index (the guest is x86-64); a list of the offered platforms otherwise.</summary>
    public static Descriptor ChoosePlatform(IReadOnlyList<Descriptor> manifests, string what)
    {
        var images = manifests.Where(m => MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType)).ToList();
        var match = images.FirstOrDefault(m => m.Os == TargetOs && m.Architecture == TargetArch);
        if (match is not null) return match;
        // An index of one image without platform data (common in OCI layouts) is that image.
        if (images.Count == 1 && images[0].Os is null && images[0].Architecture is null) return images[0];
        var offered = images.Count == 0 ? "none" : string.Join(", ", images.Select(m => m.PlatformText).Distinct());
        throw new ImageException("image_unsupported",
            $"{what} has no {TargetOs}/{TargetArch} image (platforms offered: {offered})");
    }

    public static OciImageConfig ParseConfig(byte[] bytes, string what)
    {
        using var doc = ParseJson(bytes, what);
        var root = doc.RootElement;
        var os = Str(root, "os");
        var arch = Str(root, "architecture");
        if ((os is not null && os != TargetOs) || (arch is not null && arch != TargetArch))
            throw new ImageException("image_unsupported", $"{what}: the image is for {os}/{arch}; only {TargetOs}/{TargetArch} images run here");
        if (!root.TryGetProperty("config", out var c) || c.ValueKind != JsonValueKind.Object)
            return OciImageConfig.Empty;
        return new OciImageConfig(
            StrList(c, "Env") ?? [],
            Str(c, "WorkingDir") is { Length: > 0 } wd ? wd : null,
            Str(c, "User") is { Length: > 0 } u ? u : null,
            StrList(c, "Entrypoint"),
            StrList(c, "Cmd"));
    }

    public static Descriptor ParseDescriptor(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new ImageException("image_corrupt", $"{what} is not an object");
        var digest = Str(e, "digest");
        if (!Digests.IsValid(digest))
            throw new ImageException("image_unsupported", $"{what} has digest '{digest}', which is not sha256:<64 hex>");
        long size = e.TryGetProperty("size", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var n) && n >= 0 ? n
            : throw new ImageException("image_corrupt", $"{what} {digest} has no valid size");
        string? os = null, arch = null, variant = null;
        if (e.TryGetProperty("platform", out var p) && p.ValueKind == JsonValueKind.Object)
        {
            os = Str(p, "os");
            arch = Str(p, "architecture");
            variant = Str(p, "variant");
        }
        var annotations = new Dictionary<string, string>();
        if (e.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
            foreach (var kv in a.EnumerateObject())
                if (kv.Value.ValueKind == JsonValueKind.String) annotations[kv.Name] = kv.Value.GetString()!;
        return new Descriptor(Str(e, "mediaType") ?? "", digest!, size, os, arch, variant, annotations);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static List<string>? StrList(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
            : null;
}
