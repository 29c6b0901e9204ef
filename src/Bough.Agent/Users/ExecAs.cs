using System.Globalization;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Users;

/// <summary>
/// Runs commands as another user. posix_spawn cannot change credentials and a managed runtime must
/// not fork, so the agent spawns a trampoline that drops to the user and execve's the command in
/// place (same pid, session, pipes and cwd):
/// <code>exec-as UID GID G1,G2,..|- EXE ARGV0 ARGV..</code>
/// The trampoline is Native/exec-as.c: a 1.6 KB freestanding static binary (no libc, so it runs in
/// any image), compiled from source by the agent's build, embedded as a resource and loaded into a sealed memfd once per agent process, then spawned
/// as <c>/proc/self/fd/N</c>. A first version spawned the agent itself in a trampoline mode, which
/// cost a .NET runtime start per exec: ~40 ms natively but ~2.7 s under TCG.
/// The command's environment is passed as the trampoline's own (it uses none), so nothing of the
/// agent's environment (LD_LIBRARY_PATH of its private loader) can reach the command. The trampoline
/// resets all signal dispositions and the mask; failures print on stderr and exit 127/126 like a shell.
/// </summary>
internal sealed class ExecAs
{
    /// <summary>Native/exec-as.c, compiled by the agent's build (see Bough.Agent.csproj) and embedded.</summary>
    private static byte[] LoadBinary()
    {
        using var stream = typeof(ExecAs).Assembly.GetManifestResourceStream("bough.exec-as")
            ?? throw new AgentError(ErrorCodes.Unsupported, "the exec-as trampoline is missing from the agent build");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private readonly Lock _lock = new();
    private string? _path;

    /// <summary>The trampoline's argv for a command.</summary>
    public static List<string> BuildArgv(string trampoline, ResolvedUser user, string executable, IReadOnlyList<string> argv)
    {
        var list = new List<string>(argv.Count + 5)
        {
            trampoline,
            user.Uid.ToString(CultureInfo.InvariantCulture),
            user.Gid.ToString(CultureInfo.InvariantCulture),
            user.Groups.Count == 0 ? "-" : string.Join(',', user.Groups.Select(g => g.ToString(CultureInfo.InvariantCulture))),
            executable,
        };
        list.AddRange(argv);
        return list;
    }

    /// <summary>
    /// <c>/proc/self/fd/N</c> of a memfd holding the trampoline (close-on-exec, so commands never
    /// inherit it; execve opens the path before closing it). Sealed against writes.
    /// </summary>
    public unsafe string Path()
    {
        lock (_lock)
        {
            if (_path != null) return _path;
            var bytes = LoadBinary();
            int fd = Libc.memfd_create("bough-exec-as", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
            if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "memfd_create", "bough-exec-as");
            fixed (byte* p = bytes)
            {
                if (Libc.write(fd, p, bytes.Length) != bytes.Length)
                {
                    int err = Libc.Errno;
                    Libc.close(fd);
                    throw AgentError.FromErrno(err, "write", "bough-exec-as memfd");
                }
            }
            Libc.fchmod(fd, 0x1ed); // 0755
            Libc.fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SEAL | Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_WRITE);
            return _path = $"/proc/self/fd/{fd}";
        }
    }
}
