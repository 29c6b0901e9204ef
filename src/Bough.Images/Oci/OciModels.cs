namespace Bough.Images.Oci;

// The data an OCI pull or import produces, and the errors it can fail with. The engine composes:
//   ImageReference.Parse → OciPuller.PullAsync (or OciArchiveImporter.ImportAsync) → ResolvedImage
//   → LayerFlattener.ApplyAsync for each layer into a staging root → GuestImageBuilder.PublishAsync.

/// <summary>
/// A parsed image reference, normalised the way Docker does: <c>python:3.12</c> →
/// registry <c>docker.io</c> (API host <c>registry-1.docker.io</c>), repository <c>library/python</c>, tag <c>3.12</c>.
/// Without tag or digest the tag is <c>latest</c>.
/// </summary>
public sealed record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    /// <summary>Parses and normalises; throws <see cref="ImageException"/> (invalid_request) on malformed input.</summary>
    public static ImageReference Parse(string reference) => ImageReferenceParser.Parse(reference);

    /// <summary>The host to talk HTTP to (docker.io → registry-1.docker.io).</summary>
    public string ApiHost => Registry == "docker.io" ? "registry-1.docker.io" : Registry;

    /// <summary>Canonical string: <c>registry/repository:tag</c>, <c>registry/repository@digest</c> or both.</summary>
    public override string ToString() =>
        $"{Registry}/{Repository}" + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);
}

/// <summary>The parts of an OCI image config that become exec defaults.</summary>
public sealed record OciImageConfig(
    IReadOnlyList<string> Env,
    string? WorkingDir,
    string? User,
    IReadOnlyList<string>? Entrypoint,
    IReadOnlyList<string>? Cmd)
{
    public static OciImageConfig Empty { get; } = new([], null, null, null, null);
}

/// <summary>A layer blob in the local blob cache, verified against its digest.</summary>
/// <param name="MediaType">As the manifest named it (tar, tar+gzip, tar+zstd; OCI or Docker v2).</param>
/// <param name="Path">The cached blob file (compressed as downloaded).</param>
public sealed record LayerBlob(string Digest, string MediaType, long Size, string Path);

/// <summary>An image whose manifest, config and layers are all in the local blob cache.</summary>
/// <param name="Reference">Canonical reference it was pulled or imported as (null for an archive without one).</param>
/// <param name="ManifestDigest">Digest of the platform manifest (not the index).</param>
public sealed record ResolvedImage(string? Reference, string ManifestDigest, string ConfigDigest,
    OciImageConfig Config, IReadOnlyList<LayerBlob> Layers);

/// <summary>Progress of a pull. Layers are listed in manifest order once the manifest is known.</summary>
public sealed record PullProgress(string Phase, IReadOnlyList<LayerProgress> Layers);

/// <param name="State">"waiting", "downloading", "cached" or "done".</param>
public sealed record LayerProgress(string Digest, long Size, long Done, string State);

/// <summary>
/// Why a pull, import, flatten or build failed. <see cref="Code"/> is one of the REST error codes in
/// <c>Bough.Contracts.ErrorCodes</c> (image_ref_not_found, registry_unauthorized, registry_unavailable,
/// image_corrupt, layer_rejected, image_unsupported, image_build_failed, invalid_request, permission_denied), so the
/// engine can map it to a status without parsing messages.
/// </summary>
public sealed class ImageException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;
}
