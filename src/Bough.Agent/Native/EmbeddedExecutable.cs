using Bough.Protocol;

namespace Bough.Agent.Native;

/// <summary>
/// One of the agent's native helpers (Native/*.c, compiled by the agent's build and embedded as
/// <c>bough.NAME</c>), loaded into a sealed memfd on first use and run as <c>/proc/self/fd/N</c>: nothing is
/// written to the guest's disk, and images without a libc can run them. The memfd is close-on-exec, so
/// commands never inherit it; execve opens the path before closing it.
/// </summary>
internal sealed class EmbeddedExecutable(string name)
{
    private readonly Lock _lock = new();
    private string? _path;

    /// <summary><c>/proc/self/fd/N</c> of the sealed memfd holding the helper.</summary>
    /// <exception cref="AgentError">The helper is missing from the build, or the memfd could not be made.</exception>
    public unsafe string Path()
    {
        lock (_lock)
        {
            if (_path != null) return _path;
            var bytes = Load();
            int fd = Libc.memfd_create("bough-" + name, Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
            if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "memfd_create", "bough-" + name);
            fixed (byte* p = bytes)
            {
                if (Libc.write(fd, p, bytes.Length) != bytes.Length)
                {
                    int err = Libc.Errno;
                    Libc.close(fd);
                    throw AgentError.FromErrno(err, "write", $"bough-{name} memfd");
                }
            }
            Libc.fchmod(fd, 0x1ed); // 0755
            Libc.fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SEAL | Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_WRITE);
            return _path = $"/proc/self/fd/{fd}";
        }
    }

    private byte[] Load()
    {
        using var stream = typeof(EmbeddedExecutable).Assembly.GetManifestResourceStream("bough." + name)
            ?? throw new AgentError(ErrorCodes.Unsupported, $"the {name} helper is missing from the agent build");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
