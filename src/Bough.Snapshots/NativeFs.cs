using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// The few libc calls .NET has no API for: device/inode identity (to find a file's mapping in
/// /proc/PID/maps), hard links, hole-aware copies (SEEK_DATA/SEEK_HOLE), hole punching and fsync.
/// </summary>
internal static class NativeFs
{
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;
    private const int ENXIO = 6;
    private const int EXDEV = 18;
    private const int FALLOC_FL_KEEP_SIZE = 0x01;
    private const int FALLOC_FL_PUNCH_HOLE = 0x02;
    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    [DllImport("libc", SetLastError = true, EntryPoint = "stat")]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buf);

    [DllImport("libc", SetLastError = true, EntryPoint = "link")]
    private static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    [DllImport("libc", SetLastError = true, EntryPoint = "lseek")]
    private static extern long LSeek(int fd, long offset, int whence);

    [DllImport("libc", SetLastError = true, EntryPoint = "fallocate")]
    private static extern int FAllocate(int fd, int mode, long offset, long len);

    [DllImport("libc", SetLastError = true, EntryPoint = "fsync")]
    private static extern int FSync(int fd);

    [DllImport("libc", SetLastError = true, EntryPoint = "open")]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "close")]
    private static extern int Close(int fd);

    /// <summary>(major, minor, inode) as /proc/PID/maps prints them (the dev field is "major:minor" in hex).</summary>
    public static (uint Major, uint Minor, ulong Inode) Identity(string path)
    {
        // struct stat on x86_64 and aarch64 glibc: st_dev (u64) at 0, st_ino (u64) at 8.
        var buf = new byte[256];
        if (Stat(path, buf) != 0) throw Error($"stat {path}");
        ulong dev = BitConverter.ToUInt64(buf, 0);
        ulong ino = BitConverter.ToUInt64(buf, 8);
        // glibc's gnu_dev_major/minor.
        uint major = (uint)(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL));
        uint minor = (uint)((dev & 0xff) | ((dev >> 12) & ~0xffUL));
        return (major, minor, ino);
    }

    /// <summary>Hard link; false when the two paths are on different filesystems (caller copies instead).</summary>
    public static bool TryHardLink(string existing, string newPath)
    {
        if (Link(existing, newPath) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == EXDEV) return false;
        throw new IOException($"link {existing} -> {newPath}: {new Win32Exception(errno).Message}");
    }

    /// <summary>Data extents [start, end) of a sparse file, via SEEK_DATA/SEEK_HOLE (one extent if unsupported).</summary>
    public static List<(long Start, long End)> DataExtents(SafeFileHandle file, long length)
    {
        var result = new List<(long, long)>();
        int fd = (int)file.DangerousGetHandle();
        long pos = 0;
        while (pos < length)
        {
            long data = LSeek(fd, pos, SEEK_DATA);
            if (data < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == ENXIO) break; // only a hole remains
                return [(0, length)]; // no SEEK_DATA support: treat everything as data
            }
            long hole = LSeek(fd, data, SEEK_HOLE);
            if (hole < 0) hole = length;
            hole = Math.Min(hole, length);
            if (hole > data) result.Add((data, hole));
            pos = hole;
        }
        return result;
    }

    /// <summary>Deallocates a range so it reads back as zeros; false if the filesystem cannot punch holes.</summary>
    public static bool TryPunchHole(SafeFileHandle file, long offset, long length) =>
        FAllocate((int)file.DangerousGetHandle(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0;

    public static void FSync(SafeFileHandle file)
    {
        if (FSync((int)file.DangerousGetHandle()) != 0) throw Error("fsync");
    }

    /// <summary>fsync of a file by path (opened read-only; Linux allows fsync on such a descriptor).</summary>
    public static void FSyncPath(string path, bool directory = false)
    {
        int fd = Open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
        if (fd < 0) throw Error($"open {path}");
        try
        {
            if (FSync(fd) != 0) throw Error($"fsync {path}");
        }
        finally
        {
            // A read-only descriptor whose fsync already reported: close cannot lose data, its result says nothing.
            _ = Close(fd);
        }
    }

    private static IOException Error(string what)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {new Win32Exception(errno).Message} (errno {errno})");
    }
}
