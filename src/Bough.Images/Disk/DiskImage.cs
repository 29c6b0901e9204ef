using Bough.Vmm;
using Bough.HostSetup;
using Bough.Images.Oci;
using System.IO.Enumeration;

namespace Bough.Images.Disk;

/// <summary>
/// Directory tree → ext4 (mkfs.ext4 -d) → qcow2, the one way every Bough image (base, pulled, imported,
/// recipe) becomes a disk.
/// The qcow2 is made read-only (0400): it is the backing file of sandbox overlays, and a write by
/// mistake would corrupt every one of them. Like everything in the data dir it is the daemon's alone.
/// </summary>
internal static class DiskImage
{
    /// <summary>What a tree needs on ext4: file data in 4 KiB blocks plus a block per directory and long symlink.</summary>
    public sealed record TreeSize(long Bytes, long Entries);

    /// <summary>
    /// Sizes the tree under <paramref name="dir"/> without ever following a symbolic link: a link is one
    /// entry (and a block when its target is long), never what it points at, so <c>x -&gt; /etc</c> does not
    /// count the host's files and <c>a/l -&gt; ..</c> does not loop. Stops with image_build_failed past
    /// <paramref name="maxEntries"/> entries, and between entries when <paramref name="ct"/> is cancelled.
    /// </summary>
    public static TreeSize Measure(string dir, long maxEntries, CancellationToken ct)
    {
        long bytes = 0, entries = 0;
        var walk = new FileSystemEnumerable<long>(dir,
            (ref FileSystemEntry e) => e.Attributes.HasFlag(FileAttributes.ReparsePoint)
                ? LinkBlocks(e.ToFullPath())
                : e.IsDirectory ? 4096 : (e.Length + 4095) / 4096 * 4096,
            new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false })
        {
            // The default recursion descends into anything that stats as a directory, links to one included.
            ShouldRecursePredicate = (ref FileSystemEntry e) => !e.Attributes.HasFlag(FileAttributes.ReparsePoint),
        };
        foreach (var size in walk)
        {
            ct.ThrowIfCancellationRequested();
            if (++entries > maxEntries)
                throw new ImageException("image_build_failed",
                    $"the image tree {dir} has more than {maxEntries} entries (image limit MaxImageEntries)");
            bytes += size;
        }
        return new TreeSize(bytes, entries);
    }

    /// <summary>ext4 keeps a link target of up to 60 bytes in the inode; a longer one takes a block.</summary>
    private static long LinkBlocks(string path) => new FileInfo(path).LinkTarget is { Length: > 60 } ? 4096 : 0;

    /// <summary>A floor for the inode count: twice the tree's entries plus room, so images of many small files fit.</summary>
    public static long InodeFloor(TreeSize tree) => tree.Entries * 2 + 4096;

    public static long RoundUpMiB(long bytes) => (bytes + (1 << 20) - 1) >> 20 << 20;

    /// <summary>
    /// Builds <paramref name="qcow2Path"/> from <paramref name="root"/>. mkfs.ext4 copies ownership and
    /// modes from the tree (so a root builder keeps the image's owners) and root_owner=0:0 makes the
    /// root directory root's either way. lazy_itable_init=0: zero inode tables now, or every guest's
    /// kernel would do it into its overlay. <paramref name="inodes"/>: a floor for -N (images of many
    /// small files would run out of ext4's default of one inode per 16 KiB).
    /// </summary>
    public static async Task BuildAsync(string root, string ext4Path, string qcow2Path, long sizeBytes, string label,
        long? inodes, CancellationToken ct)
    {
        var mkfs = CommandLocator.Require("mkfs.ext4", "e2fsprogs");
        CommandLocator.Require(QemuImg.Executable, "qemu-utils");
        long mib = (sizeBytes + (1 << 20) - 1) >> 20;
        var args = new List<string> { "-q", "-F", "-t", "ext4", "-L", label, "-d", root,
            "-E", "root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0" };
        if (inodes is { } n && n > (mib << 20) / 16384) args.AddRange(["-N", n.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        args.AddRange([ext4Path, $"{mib}M"]);
        await CommandRunner.RunCheckedAsync(mkfs, args, null, ct);
        await QemuImg.ConvertRawToQcow2Async(ext4Path, qcow2Path, ct);
        File.Delete(ext4Path);
        Files.SetMode(qcow2Path, UnixFileMode.UserRead);
    }
}
