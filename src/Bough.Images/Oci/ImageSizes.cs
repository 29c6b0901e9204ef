namespace Bough.Images.Oci;

/// <summary>
/// Checks what a manifest declares against <see cref="ImageLimits"/> before anything is downloaded or
/// copied: the config (read whole into memory) and the compressed layer sizes (a layer never shrinks
/// much when compressed badly, so a compressed size past the uncompressed caps is refused outright).
/// The declared sizes are then enforced by <see cref="BlobStore"/>, which stops at the declared size.
/// </summary>
internal static class ImageSizes
{
    public static void CheckDeclared(ImageManifest manifest, ImageLimits limits, string what)
    {
        CheckConfig(manifest.Config.Digest, manifest.Config.Size, limits, what);
        long total = 0;
        foreach (var layer in manifest.Layers.DistinctBy(l => l.Digest))
        {
            if (layer.Size > limits.MaxLayerBytes)
                throw new ImageException("layer_rejected",
                    $"{what}: layer {layer.Digest} is {layer.Size} bytes compressed, more than {limits.MaxLayerBytes} (image limit MaxLayerBytes)");
            total += layer.Size;
            if (total > limits.MaxImageBytes)
                throw new ImageException("layer_rejected",
                    $"{what}: the layers are more than {limits.MaxImageBytes} bytes compressed (image limit MaxImageBytes)");
        }
    }

    public static void CheckConfig(string digest, long size, ImageLimits limits, string what)
    {
        if (size > limits.MaxConfigBytes)
            throw new ImageException("image_unsupported",
                $"{what}: config {digest} is {size} bytes, more than {limits.MaxConfigBytes} (image limit MaxConfigBytes)");
    }
}
