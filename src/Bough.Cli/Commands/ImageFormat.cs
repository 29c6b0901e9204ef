using System.Text.Json;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>How image fields read in human output (shared by pull, images and images show).</summary>
internal static class ImageFormat
{
    /// <summary>The first 12 hex digits, as <c>docker images</c> shows them: enough to tell images apart.</summary>
    public static string ShortDigest(string? digest)
    {
        if (string.IsNullOrEmpty(digest))
            return "-";
        var colon = digest.IndexOf(':');
        var hex = colon >= 0 ? digest[(colon + 1)..] : digest;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>Unpacked content size when known, else the disk image's; "-" for an image still being prepared.</summary>
    public static string Size(Image image) =>
        (image.ContentBytes ?? image.DiskBytes) is { } bytes ? SnapshotFormat.Bytes(bytes) : "-";

    /// <summary>"4.2 MiB content, 64.0 MiB disk" (either part only when known).</summary>
    public static string Sizes(Image image)
    {
        var parts = new List<string>();
        if (image.ContentBytes is { } content)
            parts.Add(SnapshotFormat.Bytes(content) + " content");
        if (image.DiskBytes is { } disk)
            parts.Add(SnapshotFormat.Bytes(disk) + " disk");
        return parts.Count == 0 ? "-" : string.Join(", ", parts);
    }

    /// <summary>
    /// Argv as a JSON array (<c>["python3","-m","http.server"]</c>): the form Dockerfiles use, and
    /// unambiguous where words contain spaces or quotes.
    /// </summary>
    public static string Argv(IReadOnlyList<string>? argv) =>
        argv is null or { Count: 0 } ? "-" : JsonSerializer.Serialize(argv);

    /// <summary>The short form of a layer for progress lines: algorithm-less, 12 hex digits.</summary>
    public static string Layer(LayerStatus layer) => ShortDigest(layer.Digest);

    /// <summary>The three lines every successful pull, import or build ends with.</summary>
    public static void WriteSummary(TextWriter output, Image image)
    {
        output.WriteLine(image.Name);
        output.WriteLine($"digest: {image.Digest ?? "-"}");
        output.WriteLine($"size: {Sizes(image)}");
    }
}
