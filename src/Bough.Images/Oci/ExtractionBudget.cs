namespace Bough.Images.Oci;

/// <summary>
/// What one image's layers may add up to while they are flattened: tar entries across all layers,
/// uncompressed bytes per layer and in total (<see cref="ImageLimits"/>). One budget per image,
/// shared by its layers in order; not thread-safe (layers are applied one at a time).
/// </summary>
public sealed class ExtractionBudget(ImageLimits limits)
{
    private long _entries;
    private long _imageBytes;

    public ImageLimits Limits { get; } = limits;

    /// <summary>Tar entries counted so far.</summary>
    public long Entries => _entries;

    /// <summary>Uncompressed bytes counted so far, all layers.</summary>
    public long ImageBytes => _imageBytes;

    /// <summary>Counts one tar entry of <paramref name="digest"/>; layer_rejected past <see cref="ImageLimits.MaxImageEntries"/>.</summary>
    public void AddEntry(string digest)
    {
        if (++_entries > Limits.MaxImageEntries)
            throw new ImageException("layer_rejected",
                $"layer {digest}: the image has more than {Limits.MaxImageEntries} entries (image limit MaxImageEntries)");
    }

    /// <summary>
    /// Counts <paramref name="count"/> more uncompressed bytes of <paramref name="digest"/>, whose running
    /// total is now <paramref name="layerBytes"/>; layer_rejected past either byte cap.
    /// </summary>
    public void AddBytes(string digest, long layerBytes, int count)
    {
        _imageBytes += count;
        if (layerBytes > Limits.MaxLayerBytes)
            throw new ImageException("layer_rejected",
                $"layer {digest} is larger than {Limits.MaxLayerBytes} bytes uncompressed (image limit MaxLayerBytes)");
        if (_imageBytes > Limits.MaxImageBytes)
            throw new ImageException("layer_rejected",
                $"layer {digest}: the image is larger than {Limits.MaxImageBytes} bytes uncompressed (image limit MaxImageBytes)");
    }
}
