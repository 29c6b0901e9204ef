using System.Security.Cryptography;

namespace Bough.Images;

/// <summary>
/// File helpers shared by the kernel and image builders: hashing, atomic small writes, staging directories, modes.
/// Everything that ends up in a guest (image trees, the initramfs) gets an explicit mode here, because the daemon's
/// umask is 077 and a mode left to it would make the guest's files owner-only.
/// </summary>
internal static class Files
{
    public static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct));
    }

    /// <summary>Writes a small file so readers see either the old or the new content, never half.</summary>
    public static void WriteAtomic(string path, string content)
    {
        var tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }

    public static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Makes a fresh staging directory under <paramref name="parent"/> with a random name, both private
    /// (0700): builds lay out root trees there, setuid files included.
    /// </summary>
    public static string NewStagingDir(string parent)
    {
        CreatePrivateDirectory(parent);
        var dir = Path.Combine(parent, Guid.NewGuid().ToString("N")[..12]);
        CreatePrivateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Creates <paramref name="dir"/> (and missing parents) and makes it 0700 even if it already existed,
    /// so nobody but the daemon's user can reach what is inside while it is there.
    /// </summary>
    public static void CreatePrivateDirectory(string dir)
    {
        Directory.CreateDirectory(dir);
        SetMode(dir, Private700);
    }

    /// <summary>
    /// Writes a file of a guest tree with exactly <paramref name="mode"/> (0644 unless given), whatever the process
    /// umask (077 in the daemon). Its directory must exist: creating it here would give it the umask's mode.
    /// </summary>
    public static void WriteText(string path, string content, UnixFileMode mode = Public644)
    {
        File.WriteAllText(path, content.ReplaceLineEndings("\n"));
        SetMode(path, mode);
    }

    /// <summary>
    /// mkdir -p of <paramref name="relative"/> below <paramref name="root"/> (a tree Bough lays out itself, not an
    /// image's), giving every directory it creates exactly <paramref name="mode"/>: a bare mkdir would take the
    /// process umask's mode (0700 in the daemon) into the guest. Existing directories keep theirs.
    /// </summary>
    public static string CreateDirectories(string root, string relative, UnixFileMode mode = Exec755)
    {
        var current = root;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            if (Directory.Exists(current)) continue;
            Directory.CreateDirectory(current);
            SetMode(current, mode);
        }
        return current;
    }

    /// <summary>
    /// Creates (if needed) the directory that becomes a guest's "/" and makes it 0755: mkfs.ext4 -d copies its mode
    /// into the file system's root.
    /// </summary>
    public static void CreateGuestRoot(string root)
    {
        Directory.CreateDirectory(root);
        SetMode(root, Exec755);
    }

    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
    }

    public const UnixFileMode Private700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>0644: files every user of a guest reads.</summary>
    public const UnixFileMode Public644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>01777: /tmp and /var/tmp.</summary>
    public const UnixFileMode Sticky1777 = UnixFileMode.StickyBit |
                                           UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                           UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                           UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public const UnixFileMode Exec755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
}
