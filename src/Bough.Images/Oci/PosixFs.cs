using System.Runtime.InteropServices;

namespace Bough.Images.Oci;

/// <summary>
/// The few POSIX calls .NET does not expose without following symbolic links: lchown, link,
/// utimensat(AT_SYMLINK_NOFOLLOW). Layer contents are hostile, so nothing here may follow a link;
/// the exception is realpath, whose job is to resolve every link so a containment check can compare real paths.
/// </summary>
internal static class PosixFs
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "lchown")]
    private static extern int LChownNative(string path, int uid, int gid);

    [DllImport("libc", SetLastError = true, EntryPoint = "link")]
    private static extern int LinkNative(string oldPath, string newPath);

    [DllImport("libc", SetLastError = true, EntryPoint = "utimensat")]
    private static extern int UtimensatNative(int dirfd, string path, [In] Timespec[] times, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "realpath")]
    private static extern IntPtr RealPathNative(string path, IntPtr resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void FreeNative(IntPtr p);

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuidNative();

    public static bool IsRoot => GetEuidNative() == 0;

    /// <summary>
    /// realpath(3): the absolute path with every symbolic link, "." and ".." resolved, or null when it
    /// does not exist (or cannot be resolved). What containment checks must compare, never the lexical path.
    /// </summary>
    public static string? RealPath(string path)
    {
        var p = RealPathNative(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { FreeNative(p); }
    }

    public static void LChown(string path, int uid, int gid)
    {
        if (LChownNative(path, uid, gid) != 0) throw Error("lchown", path);
    }

    public static void Link(string existing, string newPath)
    {
        if (LinkNative(existing, newPath) != 0) throw Error("link", newPath);
    }

    /// <summary>Sets access and modification time of the entry itself (a symlink is not followed).</summary>
    public static void SetMTime(string path, DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTime.UnixEpoch.Ticks;
        var ts = new Timespec { Seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rem), Nanoseconds = rem * 100 };
        if (ts.Nanoseconds < 0) { ts.Seconds--; ts.Nanoseconds += 1_000_000_000; }
        if (UtimensatNative(AtFdCwd, path, [ts, ts], AtSymlinkNoFollow) != 0) throw Error("utimensat", path);
    }

    private static IOException Error(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }
}
