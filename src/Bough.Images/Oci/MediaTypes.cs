namespace Bough.Images.Oci;

/// <summary>The manifest, config and layer media types this client understands (OCI and Docker v2).</summary>
internal static class MediaTypes
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";

    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// <summary>Not in the Docker spec, but some tools (and old `docker save` conversions) write it.</summary>
    public const string DockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

    /// <summary>Everything we ask a registry for, in the order we prefer.</summary>
    public static readonly string[] ManifestAccept = [OciIndex, OciManifest, DockerManifestList, DockerManifest];

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;
    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsSupportedLayer(string mediaType) =>
        mediaType is OciLayerTar or OciLayerGzip or OciLayerZstd or DockerLayerGzip or DockerLayerTar;

    /// <summary>
    /// Why a layer cannot be used, or null. Foreign/non-distributable layers (Windows base layers) name
    /// URLs outside the registry; we refuse them rather than fetch arbitrary URLs.
    /// </summary>
    public static string? LayerProblem(string mediaType)
    {
        if (IsSupportedLayer(mediaType)) return null;
        if (mediaType.Contains("nondistributable", StringComparison.Ordinal) || mediaType.Contains("foreign", StringComparison.Ordinal))
            return $"layer media type {mediaType} is a foreign (non-distributable) layer, which is not supported";
        return $"layer media type {mediaType} is not supported (expected a tar, tar+gzip or tar+zstd layer)";
    }
}
