using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bough.Vmm;

/// <summary>
/// Sends bytes with a file descriptor attached (<c>SCM_RIGHTS</c>) over a Unix socket: how a QMP client hands
/// QEMU an open file (<c>getfd</c>), which .NET's socket API cannot do. Layouts are Linux's (64-bit).
/// </summary>
internal static unsafe partial class ScmRights
{
    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct cmsghdr followed by one int, padded to CMSG_SPACE(sizeof(int)).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct FdControlMessage
    {
        public nuint Length;
        public int Level;
        public int Type;
        public int Fd;
        private readonly int _padding;
    }

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsg(nint socket, MsgHdr* message, int flags);

    /// <summary>
    /// Sends a prefix of <paramref name="data"/> (at least one byte) with <paramref name="fd"/> attached and
    /// returns how many bytes went; the caller writes the rest normally. The receiver gets its own copy of the
    /// descriptor; ours stays open.
    /// </summary>
    /// <exception cref="IOException">sendmsg failed.</exception>
    public static int SendWithFd(Socket socket, ReadOnlySpan<byte> data, SafeHandle fd)
    {
        ArgumentOutOfRangeException.ThrowIfZero(data.Length);
        bool socketRef = false, fdRef = false;
        try
        {
            socket.SafeHandle.DangerousAddRef(ref socketRef);
            fd.DangerousAddRef(ref fdRef);
            var control = new FdControlMessage
            {
                Length = (nuint)(sizeof(nuint) + 2 * sizeof(int) + sizeof(int)), // CMSG_LEN(sizeof(int))
                Level = SOL_SOCKET,
                Type = SCM_RIGHTS,
                Fd = checked((int)fd.DangerousGetHandle()),
            };
            fixed (byte* bytes = data)
            {
                var iov = new IoVec { Base = bytes, Length = (nuint)data.Length };
                var msg = new MsgHdr
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = &control,
                    ControlLength = (nuint)sizeof(FdControlMessage),
                };
                // The socket may be non-blocking (.NET async I/O); a QMP command is far smaller than the send
                // buffer, so EAGAIN means a peer that does not read: retry briefly, then give up.
                for (int attempt = 0; ; attempt++)
                {
                    nint sent = SendMsg(socket.SafeHandle.DangerousGetHandle(), &msg, MSG_NOSIGNAL);
                    if (sent > 0) return (int)sent;
                    int errno = Marshal.GetLastPInvokeError();
                    if (sent < 0 && (errno == EINTR || (errno == EAGAIN && attempt < 100)))
                    {
                        if (errno == EAGAIN) Thread.Sleep(10);
                        continue;
                    }
                    throw new IOException($"sendmsg with SCM_RIGHTS failed (errno {errno}).");
                }
            }
        }
        finally
        {
            if (fdRef) fd.DangerousRelease();
            if (socketRef) socket.SafeHandle.DangerousRelease();
        }
    }
}
