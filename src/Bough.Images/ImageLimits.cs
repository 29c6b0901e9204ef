namespace Bough.Images;

/// <summary>
/// Caps on what a pull, import or build may make the daemon read, hold or write. Images come from
/// registries and archives nobody vouches for, so every size they declare is checked before it is
/// believed and every byte they decompress is counted while it streams: a hostile image stops at a
/// cap with a clear error instead of filling the host's memory or disk.
/// </summary>
/// <remarks>
/// Defaults fit real images with room to spare (large CUDA/ML images are about 10–20 GiB uncompressed,
/// layers up to a few GiB, a few hundred thousand files) while a decompression bomb or a tree of
/// millions of empty files ends early. Errors name the setting that stopped them.
/// </remarks>
public sealed record ImageLimits
{
    /// <summary>Manifests, indexes, archive <c>manifest.json</c>/<c>index.json</c> and token answers (read whole into memory).</summary>
    public int MaxDocumentBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>An image config blob (read whole into memory); real ones are a few KiB, with long histories some hundred KiB.</summary>
    public int MaxConfigBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>One layer, uncompressed (counted while it is decompressed; its compressed size may not exceed this either).</summary>
    public long MaxLayerBytes { get; init; } = 16L << 30;

    /// <summary>All layers of one image together, uncompressed (also the cap for decompressing a gzipped archive to import).</summary>
    public long MaxImageBytes { get; init; } = 32L << 30;

    /// <summary>Tar entries across all layers of one image, and entries in the tree an image is built from.</summary>
    public long MaxImageEntries { get; init; } = 2_000_000;

    /// <summary>Checks the values once, so a bad setting fails at start-up rather than mid-pull.</summary>
    /// <exception cref="ArgumentException">A limit is not positive; the message names it.</exception>
    public void Validate()
    {
        if (MaxDocumentBytes < 1024) throw new ArgumentException("image limit MaxDocumentBytes must be at least 1 KiB");
        if (MaxConfigBytes < 1024) throw new ArgumentException("image limit MaxConfigBytes must be at least 1 KiB");
        if (MaxLayerBytes < 1) throw new ArgumentException("image limit MaxLayerBytes must be positive");
        if (MaxImageBytes < 1) throw new ArgumentException("image limit MaxImageBytes must be positive");
        if (MaxImageEntries < 1) throw new ArgumentException("image limit MaxImageEntries must be positive");
    }
}
