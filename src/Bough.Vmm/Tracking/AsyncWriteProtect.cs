using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm.Tracking;

/// <summary>
/// One QEMU process's userfaultfd, held by the daemon, and the two kernel operations tracking needs on it: register
/// address ranges for asynchronous write-protect, and scan them (<c>PAGEMAP_SCAN</c>), which reports the pages written
/// since the previous scan and write-protects them again in the same walk. Registration and scans act on the address
/// space the userfaultfd was made in (QEMU's), not on the daemon's.
/// </summary>
/// <remarks>
/// With <c>UFFD_FEATURE_WP_ASYNC</c> a write to a protected page never waits for a handler: the kernel lifts the
/// protection and the page counts as written. <c>WP_UNPOPULATED</c> extends protection to pages the process has not
/// touched yet, so a first write to one is seen too. A scan of a range the kernel cannot track asynchronously fails
/// (<c>PM_SCAN_CHECK_WPASYNC</c>) instead of silently reporting less.
/// </remarks>
internal sealed class AsyncWriteProtect : IDisposable
{
    /// <summary>Regions per scan call; a scan that fills them goes on from where the kernel stopped.</summary>
    private const int RegionsPerCall = 4096;

    private readonly SafeFileHandle _uffd;
    private readonly SafeFileHandle _pagemap;
    private readonly UffdAbi.PageRegion[] _regions = new UffdAbi.PageRegion[RegionsPerCall];

    private AsyncWriteProtect(SafeFileHandle uffd, SafeFileHandle pagemap)
    {
        _uffd = uffd;
        _pagemap = pagemap;
    }

    /// <summary>
    /// Takes a copy of descriptor <paramref name="fd"/> of the process behind <paramref name="pidfd"/> (it must be a
    /// userfaultfd) and opens that process's pagemap. Null, with the reason, when either is impossible.
    /// </summary>
    public static AsyncWriteProtect? Take(int pid, SafeFileHandle pidfd, int fd, out string reason)
    {
        long got;
        using (var lease = new FdLease(pidfd)) got = UffdAbi.Syscall3(UffdAbi.SysPidfdGetfd, lease.Fd, fd, 0);
        if (got < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            reason = errno == UffdAbi.EBADF
                ? $"QEMU has no descriptor {fd} (it was started without the preload library, or the kernel refused it a userfaultfd)"
                : $"pidfd_getfd of QEMU's descriptor {fd} failed: {Describe(errno)}";
            return null;
        }
        var uffd = new SafeFileHandle(checked((IntPtr)got), ownsHandle: true);
        string? kind = ReadLink($"/proc/self/fd/{got}");
        if (kind != "anon_inode:[userfaultfd]")
        {
            uffd.Dispose();
            reason = $"QEMU's descriptor {fd} is not a userfaultfd ({kind ?? "unknown"})";
            return null;
        }
        SafeFileHandle pagemap;
        try
        {
            pagemap = File.OpenHandle($"/proc/{pid}/pagemap", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            uffd.Dispose();
            reason = $"cannot open /proc/{pid}/pagemap: {e.Message}";
            return null;
        }
        // The pagemap was opened by pid: still the same process only if the pidfd's process has not exited meanwhile.
        if (Native.PidfdHasExited(pidfd))
        {
            pagemap.Dispose();
            uffd.Dispose();
            reason = "QEMU exited while tracking was being armed";
            return null;
        }
        reason = "";
        return new AsyncWriteProtect(uffd, pagemap);
    }

    /// <summary>Outcome of the API handshake.</summary>
    public enum ApiResult
    {
        /// <summary>Asynchronous write-protect enabled now.</summary>
        Enabled,
        /// <summary>The handshake was done before (by a previous daemon, for an adopted VM) or the kernel lacks the
        /// features; which one shows at registration or at the first scan, which checks the mode.</summary>
        AlreadyDoneOrUnsupported,
        /// <summary>Refused for another reason (the message says which).</summary>
        Failed,
    }

    /// <summary><c>UFFDIO_API</c> with WP_ASYNC and WP_UNPOPULATED; a userfaultfd accepts it once.</summary>
    public ApiResult EnableApi(out string detail)
    {
        var arg = new UffdAbi.UffdioApiArg { Api = UffdAbi.UffdApi, Features = UffdAbi.FeatureWpAsync | UffdAbi.FeatureWpUnpopulated };
        int rc;
        using (var fd = new FdLease(_uffd)) rc = UffdAbi.Ioctl(fd.Fd, UffdAbi.UffdioApiRequest, ref arg);
        if (rc == 0)
        {
            detail = $"features 0x{arg.Features:x}";
            return ApiResult.Enabled;
        }
        int errno = Marshal.GetLastPInvokeError();
        detail = Describe(errno);
        return errno == UffdAbi.EINVAL ? ApiResult.AlreadyDoneOrUnsupported : ApiResult.Failed;
    }

    /// <summary><c>UFFDIO_REGISTER</c> in write-protect mode; registering a range this userfaultfd holds already is allowed.</summary>
    /// <exception cref="IOException">The kernel refused (the message has the errno).</exception>
    public void Register(ulong start, ulong length)
    {
        var arg = new UffdAbi.UffdioRegisterArg { Start = start, Length = length, Mode = UffdAbi.RegisterModeWp };
        int rc;
        using (var fd = new FdLease(_uffd)) rc = UffdAbi.Ioctl(fd.Fd, UffdAbi.UffdioRegisterRequest, ref arg);
        if (rc != 0)
            throw new IOException($"UFFDIO_REGISTER of 0x{start:x}+0x{length:x} for write-protect: {Describe(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>
    /// <c>PAGEMAP_SCAN</c> over [<paramref name="start"/>, <paramref name="end"/>): calls <paramref name="written"/> for each
    /// run of pages written since they were last protected (ascending, page aligned) and protects them again.
    /// </summary>
    /// <exception cref="IOException">The scan failed (EPERM: the range is not registered for asynchronous write-protect).
    /// Pages may then have been protected without being reported: no later scan of this range can be trusted.</exception>
    public void ScanAndProtect(ulong start, ulong end, Action<ulong, ulong> written)
    {
        var handle = GCHandle.Alloc(_regions, GCHandleType.Pinned);
        try
        {
            ulong cursor = start;
            while (cursor < end)
            {
                var arg = new UffdAbi.PmScanArg
                {
                    Size = (ulong)Marshal.SizeOf<UffdAbi.PmScanArg>(),
                    Flags = UffdAbi.ScanWpMatching | UffdAbi.ScanCheckWpAsync,
                    Start = cursor,
                    End = end,
                    Vec = (ulong)handle.AddrOfPinnedObject(),
                    VecLen = RegionsPerCall,
                    CategoryMask = UffdAbi.PageIsWritten,
                    ReturnMask = UffdAbi.PageIsWritten,
                };
                int n;
                using (var fd = new FdLease(_pagemap)) n = UffdAbi.Ioctl(fd.Fd, UffdAbi.PagemapScanRequest, ref arg);
                // A failed call may have protected pages it could not report: the caller must stop trusting the scans.
                if (n < 0)
                    throw new IOException($"PAGEMAP_SCAN of 0x{cursor:x}-0x{end:x}: {Describe(Marshal.GetLastPInvokeError())}");
                for (int i = 0; i < n; i++) written(_regions[i].Start, _regions[i].End);
                if (arg.WalkEnd <= cursor || arg.WalkEnd > end)
                    throw new IOException($"PAGEMAP_SCAN of 0x{cursor:x}-0x{end:x} stopped at 0x{arg.WalkEnd:x}.");
                cursor = arg.WalkEnd;
            }
        }
        finally
        {
            handle.Free();
        }
    }

    public void Dispose()
    {
        _pagemap.Dispose();
        _uffd.Dispose();
    }

    /// <summary>Keeps a handle's descriptor from being closed (and its number reused) during one system call.</summary>
    private readonly ref struct FdLease
    {
        private readonly SafeFileHandle _handle;
        private readonly bool _added;

        public FdLease(SafeFileHandle handle)
        {
            _handle = handle;
            handle.DangerousAddRef(ref _added);
            Fd = (int)handle.DangerousGetHandle();
        }

        public int Fd { get; }

        public void Dispose()
        {
            if (_added) _handle.DangerousRelease();
        }
    }

    private static string? ReadLink(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (IOException) { return null; }
    }

    internal static string Describe(int errno) => $"{new Win32Exception(errno).Message} (errno {errno})";
}
