using System.IO.Compression;
using Bough.HostSetup;

namespace Bough.Images.Tests.Umask;

/// <summary>
/// Every entry's type and permission bits by "/"-rooted path, read from where a guest will see it: a host
/// directory tree (links not followed), the ext4 file system inside a qcow2 (debugfs), or a gzipped newc cpio
/// (cpio -itv). Entries read "d755", "f4755", "d1777" or "link".
/// </summary>
public static class TreeModes
{
    public static string Dir(UnixFileMode mode) => "d" + Octal((int)mode);
    public static string Reg(UnixFileMode mode) => "f" + Octal((int)mode);

    /// <summary>A host tree, its root included as "/".</summary>
    public static SortedDictionary<string, string> OfDirectory(string root)
    {
        var modes = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["/"] = Dir(System.IO.File.GetUnixFileMode(root)) };
        Walk(new DirectoryInfo(root), "");
        return modes;

        void Walk(DirectoryInfo dir, string prefix)
        {
            foreach (var e in dir.EnumerateFileSystemInfos())
            {
                var path = prefix + "/" + e.Name;
                if (e.LinkTarget is not null) modes[path] = "link";
                else if (e is DirectoryInfo sub)
                {
                    modes[path] = Dir(sub.UnixFileMode);
                    Walk(sub, path);
                }
                else modes[path] = Reg(e.UnixFileMode);
            }
        }
    }

    /// <summary>The ext4 file system inside <paramref name="qcow2"/> (converted to a raw file in <paramref name="work"/> for debugfs).</summary>
    public static async Task<SortedDictionary<string, string>> OfDiskAsync(string qcow2, string work)
    {
        var raw = Path.Combine(work, Guid.NewGuid().ToString("N") + ".raw");
        await CommandRunner.RunCheckedAsync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", qcow2, raw]);
        try
        {
            var modes = new SortedDictionary<string, string>(StringComparer.Ordinal);
            var dirs = new Queue<string>(["/"]);
            while (dirs.TryDequeue(out var dir))
            {
                // ls -p: one "/inode/mode/uid/gid/name/size/" line per entry, the mode in octal with its type bits.
                var ls = await CommandRunner.RunCheckedAsync("debugfs", ["-R", $"ls -p \"{dir}\"", raw]);
                foreach (var line in ls.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    var f = line.Split('/');
                    if (f.Length < 7) continue;
                    var (mode, name) = (Convert.ToInt32(f[2], 8), f[5]);
                    var type = (mode & 0xF000) switch { 0x4000 => "d", 0x8000 => "f", 0xA000 => "link", _ => "?" };
                    var entry = type == "link" ? "link" : type + Octal(mode & 0xFFF);
                    if (name == ".")
                    {
                        if (dir == "/") modes["/"] = entry;
                        continue;
                    }
                    if (name == ".." || (dir == "/" && name == "lost+found")) continue; // mkfs's own
                    var path = dir == "/" ? "/" + name : dir + "/" + name;
                    modes[path] = entry;
                    if (type == "d") dirs.Enqueue(path);
                }
            }
            return modes;
        }
        finally { System.IO.File.Delete(raw); }
    }

    /// <summary>Every member of a gzip-compressed newc cpio (an initramfs), with its mode as ls prints it ("drwxr-xr-x").</summary>
    public static async Task<SortedDictionary<string, string>> OfInitramfsAsync(string initrd, string work)
    {
        var cpio = Path.Combine(work, Guid.NewGuid().ToString("N") + ".cpio");
        await using (var gz = new GZipStream(System.IO.File.OpenRead(initrd), CompressionMode.Decompress))
        await using (var file = System.IO.File.Create(cpio))
            await gz.CopyToAsync(file);
        try
        {
            var list = await CommandRunner.RunCheckedAsync("cpio", ["--quiet", "-itv", "-F", cpio]);
            var modes = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var line in list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                // perms links owner group size month day time-or-year name[ -> target]
                var f = line.Split(' ', 9, StringSplitOptions.RemoveEmptyEntries);
                modes[f[8].Split(" -> ")[0]] = f[0];
            }
            return modes;
        }
        finally { System.IO.File.Delete(cpio); }
    }

    private static string Octal(int bits) => Convert.ToString(bits, 8);
}
