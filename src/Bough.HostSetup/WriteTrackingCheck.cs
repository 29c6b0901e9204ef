using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Bough.HostSetup;

/// <summary>
/// The <c>bough doctor</c> check for written-page tracking: can this kernel tell which pages a process wrote since the
/// last look, across processes, without soft-dirty? That takes userfaultfd asynchronous write-protect (Linux 6.7+),
/// the <c>PAGEMAP_SCAN</c> ioctl (6.7+) and <c>pidfd_getfd</c> (5.6+). The probe runs the real sequence on a private
/// file mapping of its own: register, scan, write one page, scan again and expect exactly that page. Without support
/// captures still work: they copy every page QEMU holds (written since its start), so their stop window grows with
/// everything a long-lived VM ever wrote. HostSetup does not see the VMM library, so the kernel interface is restated
/// here (same numbers as <c>Bough.Vmm.Tracking.UffdAbi</c>).
/// </summary>
public static class WriteTrackingCheck
{
    private const string Name = "write tracking";
    private const int PageSize = 4096;
    private const int Pages = 8;

    public static CheckResult Run()
    {
        if (!OperatingSystem.IsLinux())
            return Unsupported("not Linux");
        try
        {
            string? problem = Probe();
            return problem is null
                ? new CheckResult(Name, true, "userfaultfd async write-protect + PAGEMAP_SCAN: captures copy only the pages written since the previous one")
                : Unsupported(problem);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            return Unsupported(e.Message);
        }
    }

    private static CheckResult Unsupported(string why) =>
        new(Name, true, $"unavailable ({why}): captures scan every page a VM's QEMU holds, so their stop window grows with all the VM wrote since it started",
            "use Linux 6.7 or later (UFFD_FEATURE_WP_ASYNC, PAGEMAP_SCAN)") { Warning = true };

    /// <summary>Null when the whole sequence works; else what failed.</summary>
    private static string? Probe()
    {
        // User-mode-only is allowed without privileges; the kernel features probed are the same.
        int uffd = (int)Syscall(SysUserfaultfd, OCloexec | ONonblock | UffdUserModeOnly, 0, 0);
        if (uffd < 0) return "userfaultfd: " + Errno();
        string file = Path.Combine(Path.GetTempPath(), $".bough-doctor-{Guid.NewGuid():N}");
        IntPtr map = IntPtr.Zero;
        int pagemap = -1;
        try
        {
            var api = new UffdioApi { Api = 0xAA, Features = FeatureWpAsync | FeatureWpUnpopulated };
            if (Ioctl(uffd, UffdioApiRequest, ref api) != 0) return "UFFDIO_API with WP_ASYNC: " + Errno();

            // A private mapping of a file, as QEMU maps guest RAM.
            using (var fs = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                fs.SetLength(Pages * PageSize);
                map = Mmap(IntPtr.Zero, Pages * PageSize, ProtRead | ProtWrite, MapPrivate, (int)fs.SafeFileHandle.DangerousGetHandle(), 0);
            }
            if (map == new IntPtr(-1)) { map = IntPtr.Zero; return "mmap: " + Errno(); }
            var reg = new UffdioRegister { Start = (ulong)map, Length = Pages * PageSize, Mode = RegisterModeWp };
            if (Ioctl(uffd, UffdioRegisterRequest, ref reg) != 0) return "UFFDIO_REGISTER for write-protect: " + Errno();

            pagemap = Open("/proc/self/pagemap", 0);
            if (pagemap < 0) return "open /proc/self/pagemap: " + Errno();
            Marshal.WriteByte(map, 1);
            if (Scan(pagemap, map, out _) is { } first) return first;
            Marshal.WriteByte(map + 3 * PageSize, 1);
            if (Scan(pagemap, map, out var written) is { } second) return second;
            if (written.Count != 1 || written[0] != (3, 4))
                return $"PAGEMAP_SCAN reported [{string.Join(", ", written)}] after one write to page 3";

            int pidfd = (int)Syscall(SysPidfdOpen, Environment.ProcessId, 0, 0);
            if (pidfd < 0) return "pidfd_open: " + Errno();
            int copy = (int)Syscall(SysPidfdGetfd, pidfd, uffd, 0);
            string? getfd = copy < 0 ? "pidfd_getfd: " + Errno() : null;
            if (copy >= 0) _ = Close(copy);
            _ = Close(pidfd);
            return getfd;
        }
        finally
        {
            if (pagemap >= 0) _ = Close(pagemap);
            if (map != IntPtr.Zero) _ = Munmap(map, Pages * PageSize);
            _ = Close(uffd);
            File.Delete(file);
        }
    }

    /// <summary>One write-protecting scan of the probe mapping; the written runs as page ranges.</summary>
    private static string? Scan(int pagemap, IntPtr map, out List<(long, long)> written)
    {
        written = [];
        var regions = new PageRegion[Pages];
        var handle = GCHandle.Alloc(regions, GCHandleType.Pinned);
        try
        {
            var arg = new PmScanArg
            {
                Size = (ulong)Marshal.SizeOf<PmScanArg>(), Flags = ScanWpMatching | ScanCheckWpAsync,
                Start = (ulong)map, End = (ulong)map + Pages * PageSize,
                Vec = (ulong)handle.AddrOfPinnedObject(), VecLen = Pages,
                CategoryMask = PageIsWritten, ReturnMask = PageIsWritten,
            };
            int n = Ioctl(pagemap, PagemapScanRequest, ref arg);
            if (n < 0) return "PAGEMAP_SCAN: " + Errno();
            for (int i = 0; i < n; i++)
                written.Add(((long)(regions[i].Start - (ulong)map) / PageSize, (long)(regions[i].End - (ulong)map) / PageSize));
            return null;
        }
        finally
        {
            handle.Free();
        }
    }

    private static string Errno()
    {
        int e = Marshal.GetLastPInvokeError();
        return $"{new Win32Exception(e).Message} (errno {e})";
    }

    private const long SysUserfaultfd = 323, SysPidfdOpen = 434, SysPidfdGetfd = 438;
    private const long OCloexec = 0x80000, ONonblock = 0x800, UffdUserModeOnly = 1;
    private const ulong FeatureWpAsync = 1UL << 15, FeatureWpUnpopulated = 1UL << 13, RegisterModeWp = 2;
    private const ulong UffdioApiRequest = 0xC018AA3F, UffdioRegisterRequest = 0xC020AA00, PagemapScanRequest = 0xC0606610;
    private const ulong ScanWpMatching = 1, ScanCheckWpAsync = 2, PageIsWritten = 2;
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioApi { public ulong Api, Features, Ioctls; }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioRegister { public ulong Start, Length, Mode, Ioctls; }

    [StructLayout(LayoutKind.Sequential)]
    private struct PmScanArg
    {
        public ulong Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages, CategoryInverted, CategoryMask, CategoryAnyofMask, ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PageRegion { public ulong Start, End, Categories; }

    [DllImport("libc", SetLastError = true, EntryPoint = "syscall")]
    private static extern long Syscall(long number, long a1, long a2, long a3);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    private static extern int Ioctl(int fd, ulong request, ref UffdioApi arg);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    private static extern int Ioctl(int fd, ulong request, ref UffdioRegister arg);

    [DllImport("libc", SetLastError = true, EntryPoint = "ioctl")]
    private static extern int Ioctl(int fd, ulong request, ref PmScanArg arg);

    [DllImport("libc", SetLastError = true, EntryPoint = "mmap")]
    private static extern IntPtr Mmap(IntPtr addr, nuint length, int prot, int flags, int fd, long offset);

    [DllImport("libc", SetLastError = true, EntryPoint = "munmap")]
    private static extern int Munmap(IntPtr addr, nuint length);

    [DllImport("libc", SetLastError = true, EntryPoint = "open")]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "close")]
    private static extern int Close(int fd);
}
