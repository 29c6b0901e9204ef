namespace Bough.Vmm.Tracking;

/// <summary>
/// The preload library QEMU is started with for written-page tracking (<c>Tracking/Native/uffd-preload.c</c>, built by
/// the project and embedded). The launcher writes it into the VM's runtime directory, which only root can write, and
/// names it in <c>LD_PRELOAD</c> for that one QEMU; the dynamic loader maps it while QEMU still runs as root, so the
/// jailed QEMU never needs to open it.
/// </summary>
internal static class UffdPreload
{
    private const string ResourceName = "bough.uffd-preload.so";

    /// <summary>The library's bytes; null when this build has none (then VMs start without tracking).</summary>
    public static byte[]? Bytes()
    {
        using var stream = typeof(UffdPreload).Assembly.GetManifestResourceStream(ResourceName);
        if (stream is null) return null;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// Writes the library to <paramref name="path"/> (replaced by rename, never rewritten in place) with mode 0600: the loader
    /// reads it as root, and nothing in a data directory is for other users. False when this build carries no library.
    /// </summary>
    public static bool WriteTo(string path)
    {
        byte[]? bytes = Bytes();
        if (bytes is null || OperatingSystem.IsWindows()) return false;
        string tmp = path + ".tmp";
        File.Delete(tmp);
        using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write)) fs.Write(bytes);
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
        return true;
    }
}
