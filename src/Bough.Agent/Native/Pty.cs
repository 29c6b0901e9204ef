using System.Text;

namespace Bough.Agent.Native;

/// <summary>
/// A pseudo-terminal master the agent keeps, and the slave path the child opens. The agent never
/// opens the slave itself: the child, a new session leader (POSIX_SPAWN_SETSID runs before the
/// file actions in glibc), opens it without O_NOCTTY and so makes it its controlling terminal.
/// That is what gives job control, SIGWINCH on resize and SIGHUP when the terminal goes away.
/// </summary>
internal static unsafe class Pty
{
    /// <summary>Opens a master (non-blocking, close-on-exec, never the agent's controlling tty) of the given size.</summary>
    public static (int MasterFd, string SlavePath) Open(int cols, int rows)
    {
        int fd = Libc.posix_openpt(Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC);
        if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "posix_openpt", "/dev/ptmx");
        try
        {
            if (Libc.grantpt(fd) != 0) throw AgentError.FromErrno(Libc.Errno, "grantpt", "/dev/ptmx");
            if (Libc.unlockpt(fd) != 0) throw AgentError.FromErrno(Libc.Errno, "unlockpt", "/dev/ptmx");
            byte* name = stackalloc byte[128];
            int rc = Libc.ptsname_r(fd, name, 128);
            if (rc != 0) throw AgentError.FromErrno(rc, "ptsname", "/dev/ptmx");
            string slave = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(name, new ReadOnlySpan<byte>(name, 128).IndexOf((byte)0)));
            int err = Resize(fd, cols, rows);
            if (err != 0) throw AgentError.FromErrno(err, "TIOCSWINSZ", slave);
            int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
            Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK);
            return (fd, slave);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    /// <summary>TIOCSWINSZ on the master; the kernel sends SIGWINCH to the terminal's foreground process group. Returns errno.</summary>
    public static int Resize(int masterFd, int cols, int rows)
    {
        ushort* ws = stackalloc ushort[4] { (ushort)rows, (ushort)cols, 0, 0 };
        return Libc.ioctl(masterFd, Libc.TIOCSWINSZ, ws) == 0 ? 0 : Libc.Errno;
    }
}
