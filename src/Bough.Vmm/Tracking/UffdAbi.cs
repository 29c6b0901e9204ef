using System.Runtime.InteropServices;

namespace Bough.Vmm.Tracking;

/// <summary>
/// The kernel interfaces of written-page tracking: <c>userfaultfd</c> asynchronous write-protect (Linux 6.7+) and the
/// <c>PAGEMAP_SCAN</c> ioctl on <c>/proc/PID/pagemap</c> (6.7+), plus <c>pidfd_getfd</c> (5.6+). Debian 12's headers
/// predate the first two, so the layouts and request numbers are written out here (include/uapi/linux/userfaultfd.h,
/// include/uapi/linux/fs.h). x86_64 and arm64 share them.
/// </summary>
internal static class UffdAbi
{
    public const long SysPidfdGetfd = 438;

    public const ulong UffdApi = 0xAA;
    /// <summary>Write faults resolve in the kernel (no handler thread): the page just becomes "written".</summary>
    public const ulong FeatureWpAsync = 1UL << 15;
    /// <summary>Write-protect also applies to pages not populated yet (markers), so a later first write is seen.</summary>
    public const ulong FeatureWpUnpopulated = 1UL << 13;
    public const ulong RegisterModeWp = 1UL << 1;

    /// <summary><c>_IOWR(0xAA, 0x3F, struct uffdio_api)</c>.</summary>
    public const ulong UffdioApiRequest = 0xC018AA3F;
    /// <summary><c>_IOWR(0xAA, 0x00, struct uffdio_register)</c>.</summary>
    public const ulong UffdioRegisterRequest = 0xC020AA00;
    /// <summary><c>_IOWR('f', 16, struct pm_scan_arg)</c>.</summary>
    public const ulong PagemapScanRequest = 0xC0606610;

    /// <summary>Write-protect the pages that match (after reporting them), atomically with the walk.</summary>
    public const ulong ScanWpMatching = 1UL << 0;
    /// <summary>Fail with EPERM unless the whole range is registered for asynchronous write-protect.</summary>
    public const ulong ScanCheckWpAsync = 1UL << 1;
    /// <summary>PAGE_IS_WRITTEN: not write-protected (written since it was last protected, or never protected).</summary>
    public const ulong PageIsWritten = 1UL << 1;

    public const int EBADF = 9;
    public const int EINVAL = 22;

    [StructLayout(LayoutKind.Sequential)]
    public struct UffdioApiArg
    {
        public ulong Api;
        public ulong Features;
        public ulong Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct UffdioRegisterArg
    {
        public ulong Start;
        public ulong Length;
        public ulong Mode;
        public ulong Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PmScanArg
    {
        public ulong Size;
        public ulong Flags;
        public ulong Start;
        public ulong End;
        public ulong WalkEnd;
        public ulong Vec;
        public ulong VecLen;
        public ulong MaxPages;
        public ulong CategoryInverted;
        public ulong CategoryMask;
        public ulong CategoryAnyofMask;
        public ulong ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PageRegion
    {
        public ulong Start;
        public ulong End;
        public ulong Categories;
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "syscall")]
    public static extern long Syscall3(long number, long a1, long a2, long a3);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    public static extern int Ioctl(int fd, ulong request, ref UffdioApiArg arg);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    public static extern int Ioctl(int fd, ulong request, ref UffdioRegisterArg arg);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    public static extern int Ioctl(int fd, ulong request, ref PmScanArg arg);
}
