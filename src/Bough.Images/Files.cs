using System.Security.Cryptography;

namespace Bough.Images;

/// <summary>File helpers shared by the kernel and image builders: hashing, atomic small writes, staging directories, modes.</summary>
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

    public static void WriteText(string path, string content, UnixFileMode? mode = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content.ReplaceLineEndings("\n"));
        if (mode is { } m) SetMode(path, m);
    }

    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
    }

    public const UnixFileMode Private700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode Exec755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
}
