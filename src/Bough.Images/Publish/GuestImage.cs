using Bough.Images.Oci;

namespace Bough.Images.Publish;

/// <summary>An image published under <c>&lt;data&gt;/images/oci/&lt;Id&gt;/</c>: read-only disk.qcow2 and image.json.</summary>
/// <param name="ContentBytes">What the root tree needed (4 KiB blocks), before ext4 overhead.</param>
/// <param name="DiskBytes">The ext4 filesystem's (virtual) size; the qcow2 file only holds what was written.</param>
public sealed record GuestImage(string Id, string Name, string Dir, string DiskPath, OciImageConfig Config,
    string? Digest, long ContentBytes, long DiskBytes, DateTimeOffset BuiltAt);
