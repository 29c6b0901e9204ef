using System.Formats.Tar;

namespace Bough.Images.Oci;

/// <summary>What applying one layer did; devices and fifos are counted, not created (the guest's devtmpfs provides them).</summary>
public sealed record LayerApplyStats(int Files, int Directories, int Symlinks, int HardLinks, int Whiteouts, int SkippedSpecial);

/// <summary>Applies layers (in order) onto a root directory: whiteouts, opaque dirs, links, ownership.</summary>
public static class LayerFlattener
{
    /// <summary>Throws <see cref="ImageException"/> (layer_rejected) for entries escaping <paramref name="rootDir"/>; writes nothing outside it.</summary>
    /// <remarks>
    /// Ownership is applied only when running as root (otherwise files belong to the caller). A layer that
    /// fails part-way leaves <paramref name="rootDir"/> half-applied: callers flatten into a staging root
    /// and discard it on failure.
    /// </remarks>
    public static async Task<LayerApplyStats> ApplyAsync(LayerBlob layer, string rootDir, CancellationToken ct)
    {
        Directory.CreateDirectory(rootDir);
        var applier = new LayerApplier(Path.GetFullPath(rootDir), layer.Digest, PosixFs.IsRoot);
        await using var source = await LayerDecompression.OpenAsync(layer, ct);
        try
        {
            await using var reader = new TarReader(source.Tar, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
                await applier.ApplyAsync(entry, ct);
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
