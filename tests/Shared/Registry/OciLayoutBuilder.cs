using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Bough.TestSupport.Registry;

/// <summary>A content descriptor as written into manifests and indexes.</summary>
public sealed record OciBlob(string MediaType, string Digest, long Size)
{
    public string Hex => Digest["sha256:".Length..];
}

/// <summary>One layer of a test image.</summary>
public sealed record LayerSpec(IReadOnlyList<TarItem> Items, LayerCompression Compression = LayerCompression.Gzip);

/// <summary>A test image: layers plus the config fields that become exec defaults.</summary>
public sealed record ImageSpec(IReadOnlyList<LayerSpec> Layers)
{
    public string Os { get; init; } = "linux";
    public string Architecture { get; init; } = "amd64";
    public IReadOnlyList<string> Env { get; init; } = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
}

/// <summary>What <see cref="OciLayoutBuilder.AddImage"/> wrote.</summary>
public sealed record BuiltImage(OciBlob Manifest, OciBlob Config, IReadOnlyList<OciBlob> Layers, string Os, string Architecture);

/// <summary>
/// Writes an OCI image layout directory (oci-layout, index.json, blobs/sha256/) in C#, so tests have
/// images without Docker: single-platform or a multi-arch index, layers as tar, tar+gzip or tar+zstd.
/// </summary>
public sealed class OciLayoutBuilder
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";

    private readonly List<(OciBlob Blob, string? Os, string? Arch, string? RefName)> _entries = [];

    public OciLayoutBuilder(string dir)
    {
        Dir = Path.GetFullPath(dir);
        Directory.CreateDirectory(Path.Combine(Dir, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(Dir, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
    }

    public string Dir { get; }

    public string BlobPath(string digest) => Path.Combine(Dir, "blobs", "sha256", digest["sha256:".Length..]);

    public OciBlob AddBlob(byte[] data, string mediaType)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
        File.WriteAllBytes(BlobPath(digest), data);
        return new OciBlob(mediaType, digest, data.Length);
    }

    public static string LayerMediaType(LayerCompression c) => c switch
    {
        LayerCompression.None => "application/vnd.oci.image.layer.v1.tar",
        LayerCompression.Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        _ => "application/vnd.oci.image.layer.v1.tar+zstd",
    };

    public BuiltImage AddImage(ImageSpec spec)
    {
        var layers = new List<OciBlob>();
        var diffIds = new JsonArray();
        foreach (var l in spec.Layers)
        {
            var tar = TarBuilder.Tar(l.Items);
            diffIds.Add("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)));
            layers.Add(AddBlob(TarBuilder.Compress(tar, l.Compression), LayerMediaType(l.Compression)));
        }
        var cfg = new JsonObject { ["Env"] = new JsonArray(spec.Env.Select(e => (JsonNode)JsonValue.Create(e)!).ToArray()) };
        if (spec.WorkingDir is not null) cfg["WorkingDir"] = spec.WorkingDir;
        if (spec.User is not null) cfg["User"] = spec.User;
        if (spec.Cmd is not null) cfg["Cmd"] = Strings(spec.Cmd);
        if (spec.Entrypoint is not null) cfg["Entrypoint"] = Strings(spec.Entrypoint);
        var config = new JsonObject
        {
            ["architecture"] = spec.Architecture,
            ["os"] = spec.Os,
            ["config"] = cfg,
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
            ["created"] = "2024-01-02T03:04:05Z",
        };
        var configBlob = AddBlob(Json(config), OciConfig);
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciManifest,
            ["config"] = Descriptor(configBlob),
            ["layers"] = new JsonArray(layers.Select(l => (JsonNode)Descriptor(l)).ToArray()),
        };
        return new BuiltImage(AddBlob(Json(manifest), OciManifest), configBlob, layers, spec.Os, spec.Architecture);
    }

    /// <summary>Writes an image index blob listing the images with their platforms.</summary>
    public OciBlob AddIndex(params BuiltImage[] images)
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciIndex,
            ["manifests"] = new JsonArray(images.Select(i =>
            {
                var d = Descriptor(i.Manifest);
                d["platform"] = new JsonObject { ["os"] = i.Os, ["architecture"] = i.Architecture };
                return (JsonNode)d;
            }).ToArray()),
        };
        return AddBlob(Json(index), OciIndex);
    }

    /// <summary>Lists a manifest or index in index.json under a ref name (skopeo's <c>oci:dir:TAG</c>), and rewrites index.json.</summary>
    public void Tag(OciBlob target, string refName, string? os = null, string? arch = null)
    {
        _entries.Add((target, os, arch, refName));
        var manifests = new JsonArray();
        foreach (var (blob, o, a, name) in _entries)
        {
            var d = Descriptor(blob);
            if (o is not null) d["platform"] = new JsonObject { ["os"] = o, ["architecture"] = a };
            if (name is not null) d["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = name };
            manifests.Add(d);
        }
        var index = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = OciIndex, ["manifests"] = manifests };
        File.WriteAllBytes(Path.Combine(Dir, "index.json"), Json(index));
    }

    private static JsonObject Descriptor(OciBlob b) => new() { ["mediaType"] = b.MediaType, ["digest"] = b.Digest, ["size"] = b.Size };
    private static JsonArray Strings(IEnumerable<string> s) => new(s.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray());
    private static byte[] Json(JsonNode n) => Encoding.UTF8.GetBytes(n.ToJsonString());
}
