// STUB SURFACE — helper "oci" replaces these bodies (and may split into files). Signatures are the
// contract the engine codes against; change them only together with the engine.
using Bough.HostSetup;

namespace Bough.Images.Oci;

internal static class ImageReferenceParser
{
    public static ImageReference Parse(string reference) => throw new NotImplementedException();
}

/// <summary>Settings for registry access.</summary>
public sealed record RegistryOptions
{
    /// <summary>
    /// Docker-style credentials file (<c>{"auths": {"host": {"auth": base64(user:pass)} or {"username","password"}}}</c>).
    /// Default: <c>&lt;data&gt;/registries.json</c> if present.
    /// </summary>
    public string? CredentialsFile { get; init; }
    /// <summary>Concurrent layer downloads.</summary>
    public int MaxConcurrentDownloads { get; init; } = 3;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Content-addressed blob cache shared by every image: <c>&lt;data&gt;/blobs/sha256/&lt;hex&gt;</c>. A blob is
/// downloaded to <c>blobs/.staging/</c>, hashed while it streams, and renamed into place only if the
/// digest matches; so a blob in the store is always whole and verified.
/// </summary>
public sealed class BlobStore(string dataDir)
{
    public string Root { get; } = Path.Combine(Path.GetFullPath(dataDir), "blobs");
    /// <summary>The path of a stored blob, or null if absent.</summary>
    public string? TryGet(string digest) => throw new NotImplementedException();
}

/// <summary>Pulls images from registries speaking the OCI Distribution API into a <see cref="BlobStore"/>.</summary>
public sealed class OciPuller(BlobStore blobs, RegistryOptions options, HttpMessageHandler? handler = null)
{
    /// <param name="insecure">Allow plain HTTP (tried after HTTPS fails) and skip TLS verification.</param>
    public Task<ResolvedImage> PullAsync(ImageReference reference, bool insecure, IProgress<PullProgress>? progress, CancellationToken ct)
        => throw new NotImplementedException();
}

/// <summary>Imports an OCI image layout directory or a <c>docker save</c> tar into a <see cref="BlobStore"/>.</summary>
public sealed class OciArchiveImporter(BlobStore blobs)
{
    public Task<ResolvedImage> ImportAsync(string path, IProgress<PullProgress>? progress, CancellationToken ct)
        => throw new NotImplementedException();
}

/// <summary>Applies layers (in order) onto a root directory: whiteouts, opaque dirs, links, ownership.</summary>
public static class LayerFlattener
{
    /// <summary>Throws <see cref="ImageException"/> (layer_rejected) for entries escaping <paramref name="rootDir"/>; writes nothing outside it.</summary>
    public static Task ApplyAsync(LayerBlob layer, string rootDir, CancellationToken ct) => throw new NotImplementedException();
}
