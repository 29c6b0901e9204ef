using System.Formats.Tar;

namespace Bough.Images.Oci;

/// <summary>What applying one layer did; devices and fifos are counted, not created (the guest's devtmpfs provides them).</summary>
public sealed record LayerApplyStats(int Files, int Directories, int Symlinks, int HardLinks, int Whiteouts, int SkippedSpecial);

/// <summary>Applies layers (in order) onto a root directory: whiteouts, opaque dirs, links, ownership.</summary>
public static class LayerFlattener
{
    /// <summary>Applies one layer as the only layer of an image, under the default <see cref="ImageLimits"/>.</summary>
    public static Task<LayerApplyStats> ApplyAsync(LayerBlob layer, string rootDir, CancellationToken ct) =>
        ApplyAsync(layer, rootDir, new ExtractionBudget(new ImageLimits()), ct);

    /// <summary>Throws <see cref="ImageException"/> (layer_rejected) for entries escaping <paramref name="rootDir"/>; writes nothing outside it.</summary>
    /// <param name="budget">The image's budget, shared by all its layers: entries and uncompressed bytes are
    /// counted while the layer streams, and the layer is rejected the moment a cap is passed.</param>
    /// <remarks>
    /// Ownership is applied only when running as root (otherwise files belong to the caller). A layer that
    /// fails part-way leaves <paramref name="rootDir"/> half-applied: callers flatten into a staging root
    /// and discard it on failure.
    /// </remarks>
    public static async Task<LayerApplyStats> ApplyAsync(LayerBlob layer, string rootDir, ExtractionBudget budget, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(budget);
        if (!Directory.Exists(rootDir)) Files.CreateGuestRoot(rootDir); // an existing root keeps the mode its caller gave it
        var applier = new LayerApplier(Path.GetFullPath(rootDir), layer.Digest, PosixFs.IsRoot);
        await using var source = await LayerDecompression.OpenAsync(layer, ct);
        try
        {
            // Everything the decompressor yields is counted, the padding after the end of the archive too
            // (drained below), so a bomb hidden there is stopped as well.
            await using var tar = new CountedReadStream(source.Tar, (total, n) => budget.AddBytes(layer.Digest, total, n));
            await using var reader = new TarReader(tar, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
            {
                budget.AddEntry(layer.Digest);
                await applier.ApplyAsync(entry, ct);
            }
            await tar.CopyToAsync(Stream.Null, ct);
            await source.CompleteAsync(ct);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new ImageException("image_corrupt", $"layer {layer.Digest} is not a valid tar stream: {e.Message}", e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new ImageException("image_build_failed", $"applying layer {layer.Digest} failed: {e.Message}", e);
        }
        return applier.Finish();
    }
}
