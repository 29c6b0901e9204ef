using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>Thin libc bindings: .NET has no API for signalling or waiting on a process that is not its child.</summary>
internal static class Native
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    private const int ESRCH = 3;
    private const long SYS_pidfd_send_signal = 424;
    private const long SYS_pidfd_open = 434;
    private const short POLLIN = 0x1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "syscall")]
    private static extern long Syscall3(long number, long a1, long a2, long a3);

    [DllImport("libc", SetLastError = true, EntryPoint = "syscall")]
    private static extern long Syscall4(long number, long a1, long a2, long a3, long a4);

    [DllImport("libc", SetLastError = true, EntryPoint = "poll")]
    private static extern int Poll([In, Out] PollFd[] fds, nuint nfds, int timeout);

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int Kill(int pid, int sig);

    [DllImport("libc", SetLastError = true, EntryPoint = "fallocate")]
    private static extern int FallocateRaw(int fd, int mode, long offset, long length);

    /// <summary>FALLOC_FL_COLLAPSE_RANGE: removes a block-aligned range, shifting what follows down.</summary>
    public const int FALLOC_FL_COLLAPSE_RANGE = 0x08;

    /// <summary>fallocate(2); returns 0 or the errno.</summary>
    public static int Fallocate(SafeFileHandle file, int mode, long offset, long length)
    {
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            return FallocateRaw((int)file.DangerousGetHandle(), mode, offset, length) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    /// <summary>
    /// Opens a pidfd: a handle that keeps referring to this exact process even if its PID is
    /// reused later. Null when the process is gone or the kernel lacks pidfd_open.
    /// </summary>
    public static SafeFileHandle? PidfdOpen(int pid)
    {
        long fd = Syscall3(SYS_pidfd_open, pid, 0, 0);
        return fd < 0 ? null : new SafeFileHandle(checked((IntPtr)fd), ownsHandle: true);
    }

    /// <summary>True once the process behind the pidfd has terminated (zombie or reaped).</summary>
    public static bool PidfdHasExited(SafeFileHandle pidfd)
    {
        bool added = false;
        pidfd.DangerousAddRef(ref added);
        try
        {
            var fds = new[] { new PollFd { Fd = (int)pidfd.DangerousGetHandle(), Events = POLLIN } };
            int rc = Poll(fds, 1, 0);
            return rc > 0 && (fds[0].Revents & POLLIN) != 0;
        }
        finally
        {
            if (added) pidfd.DangerousRelease();
        }
    }

    /// <summary>Signals via the pidfd when we have one (immune to PID reuse), else by PID.</summary>
    /// <returns>False when the process no longer exists.</returns>
    public static bool SendSignal(int pid, SafeFileHandle? pidfd, int signal)
    {
        if (pidfd is { IsInvalid: false, IsClosed: false })
        {
            bool added = false;
            pidfd.DangerousAddRef(ref added);
            try
            {
                long rc = Syscall4(SYS_pidfd_send_signal, (long)pidfd.DangerousGetHandle(), signal, 0, 0);
                if (rc == 0) return true;
                if (Marshal.GetLastPInvokeError() == ESRCH) return false;
            }
            finally
            {
                if (added) pidfd.DangerousRelease();
            }
        }
        if (Kill(pid, signal) == 0) return true;
        return Marshal.GetLastPInvokeError() != ESRCH;
    }
}
