using System.Text.Json;

namespace Bough.Vmm;

/// <summary>One block device of <c>query-block</c>.</summary>
/// <param name="Device">The drive id (<c>-drive id=...</c>); empty for devices attached by node only.</param>
/// <param name="QdevId">The guest device it is attached to (<c>qdev</c>), if any.</param>
/// <param name="NodeName">The top block node (the one <c>blockdev-snapshot-sync</c> and <c>change-backing-file</c> take);
/// null when no medium is inserted. It changes with every disk switch.</param>
/// <param name="File">The image file at the top of the chain (the one the VM writes to), as a plain path; null when no
/// medium is inserted.</param>
/// <param name="VirtualSize">Size of the disk the guest sees, in bytes.</param>
/// <param name="BackingChain">The backing files under <paramref name="File"/>, nearest first, as plain paths.</param>
public sealed record BlockDeviceInfo(string Device, string? QdevId, string? NodeName, string? File, long? VirtualSize,
    IReadOnlyList<string> BackingChain)
{
    /// <summary>A medium is inserted (the device has an image).</summary>
    public bool IsInserted => File is not null;

    /// <summary>Parses the <c>return</c> value of <c>query-block</c> (QEMU 7.2: <c>inserted.image.backing-image...</c>).</summary>
    /// <exception cref="InvalidDataException">The value is not the array QEMU returns.</exception>
    internal static IReadOnlyList<BlockDeviceInfo> ParseList(JsonElement queryBlockReturn)
    {
        if (queryBlockReturn.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"query-block returned {queryBlockReturn.ValueKind}, not an array.");
        var devices = new List<BlockDeviceInfo>();
        foreach (JsonElement b in queryBlockReturn.EnumerateArray()) devices.Add(Parse(b));
        return devices;
    }

    private static BlockDeviceInfo Parse(JsonElement b)
    {
        string device = StringOf(b, "device") ?? "";
        string? qdev = StringOf(b, "qdev");
        if (!b.TryGetProperty("inserted", out var inserted) || inserted.ValueKind != JsonValueKind.Object)
            return new BlockDeviceInfo(device, qdev, null, null, null, []);

        string? file = StringOf(inserted, "file") is { } f ? PlainFilename(f) : null;
        long? size = null;
        var chain = new List<string>();
        if (inserted.TryGetProperty("image", out var image) && image.ValueKind == JsonValueKind.Object)
        {
            if (image.TryGetProperty("virtual-size", out var vs) && vs.TryGetInt64(out long v)) size = v;
            file ??= StringOf(image, "filename") is { } top ? PlainFilename(top) : null;
            for (JsonElement level = image;
                 level.TryGetProperty("backing-image", out var backing) && backing.ValueKind == JsonValueKind.Object;
                 level = backing)
            {
                // A backing image always has a filename; an entry without one would be a QEMU we do not know.
                chain.Add(PlainFilename(StringOf(backing, "filename") ?? ""));
            }
        }
        return new BlockDeviceInfo(device, qdev, StringOf(inserted, "node-name"), file, size, chain);
    }

    /// <summary>
    /// A plain path for a filename QEMU reports. Once an image header's backing name differs from the node
    /// actually attached (after <c>change-backing-file</c>), QEMU reports a <c>json:{...}</c> pseudo-filename
    /// for the node; the protocol node's filename inside it is the file.
    /// </summary>
    internal static string PlainFilename(string filename)
    {
        if (!filename.StartsWith("json:", StringComparison.Ordinal)) return filename;
        try
        {
            using var doc = JsonDocument.Parse(filename.AsMemory("json:".Length));
            if (doc.RootElement.ValueKind == JsonValueKind.Object &&
                doc.RootElement.TryGetProperty("file", out var proto) && proto.ValueKind == JsonValueKind.Object &&
                StringOf(proto, "filename") is { } plain)
                return plain;
        }
        catch (JsonException) { /* not JSON after all: keep QEMU's string */ }
        return filename;
    }

    private static string? StringOf(JsonElement obj, string property) =>
        obj.TryGetProperty(property, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
}
