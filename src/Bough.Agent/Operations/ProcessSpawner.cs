using System.Runtime.InteropServices;
using System.Text;
using Bough.Agent.Native;

namespace Bough.Agent.Operations;

/// <summary>A started command: its pid (= process group id) and the agent's ends of its pipes (-1 when not a pipe).</summary>
internal sealed record SpawnedProcess(int Pid, int StdinWrite, int StdoutRead, int StderrRead);

/// <summary>
/// Starts commands with posix_spawn. Why not Process.Start or fork: the managed runtime must not
/// fork, and Process.Start cannot make the child a session leader (needed so that a timeout can
/// kill the whole process group) nor reset the signal dispositions the runtime changed
/// (SIGPIPE is ignored by .NET and an ignored disposition would be inherited across exec).
/// All pipe fds are O_CLOEXEC so concurrent spawns never leak each other's pipes.
/// </summary>
internal static unsafe class ProcessSpawner
{
    private const int SpawnStructSize = 1024; // posix_spawnattr_t is 336 bytes, file actions 80, sigset_t 128 on glibc

    /// <summary>
    /// Returns the process, or the errno posix_spawn reported (e.g. ENOENT, EACCES, ENOEXEC).
    /// With <paramref name="ttyPath"/> (a pty slave) the child opens it as fd 0, 1 and 2 and no pipes
    /// are made: as a fresh session leader it thereby acquires it as its controlling terminal.
    /// </summary>
    public static SpawnedProcess? Spawn(string executable, IReadOnlyList<string> argv, IReadOnlyList<string> env, string cwd,
        bool withStdin, out int errno, string? ttyPath = null)
    {
        bool tty = ttyPath != null;
        if (tty) withStdin = false;
        int* stdinPipe = stackalloc int[2] { -1, -1 };
        int* stdoutPipe = stackalloc int[2] { -1, -1 };
        int* stderrPipe = stackalloc int[2] { -1, -1 };
        var native = new List<nint>();
        void* fa = NativeMemory.AllocZeroed(SpawnStructSize);
        void* attr = NativeMemory.AllocZeroed(SpawnStructSize);
        void* sigmask = NativeMemory.AllocZeroed(SpawnStructSize);
        void* sigdef = NativeMemory.AllocZeroed(SpawnStructSize);
        bool faInit = false, attrInit = false;
        try
        {
            if ((withStdin && Libc.pipe2(stdinPipe, Libc.O_CLOEXEC) != 0)
                || (!tty && Libc.pipe2(stdoutPipe, Libc.O_CLOEXEC) != 0)
                || (!tty && Libc.pipe2(stderrPipe, Libc.O_CLOEXEC) != 0))
            {
                errno = Libc.Errno;
                return null;
            }
            // Only the agent's ends are non-blocking; the child gets ordinary blocking pipes.
            if (withStdin) SetNonBlocking(stdinPipe[1]);
            if (!tty)
            {
                SetNonBlocking(stdoutPipe[0]);
                SetNonBlocking(stderrPipe[0]);
            }

            // Every setup call can fail (ENOMEM, a path too long for chdir): report it like a
            // failed spawn instead of starting the child with half its file actions.
            int rc = Libc.posix_spawn_file_actions_init(fa);
            faInit = rc == 0;
            if (rc == 0)
                rc = tty ? Libc.posix_spawn_file_actions_addopen(fa, 0, Utf8(native, ttyPath!), Libc.O_RDWR, 0)
                    : withStdin ? Libc.posix_spawn_file_actions_adddup2(fa, stdinPipe[0], 0)
                    : Libc.posix_spawn_file_actions_addopen(fa, 0, Utf8(native, "/dev/null"), Libc.O_RDONLY, 0);
            if (rc == 0) rc = Libc.posix_spawn_file_actions_adddup2(fa, tty ? 0 : stdoutPipe[1], 1);
            if (rc == 0) rc = Libc.posix_spawn_file_actions_adddup2(fa, tty ? 0 : stderrPipe[1], 2);
            if (rc == 0) rc = Libc.posix_spawn_file_actions_addchdir_np(fa, Utf8(native, cwd));
            if (rc == 0)
            {
                rc = Libc.posix_spawnattr_init(attr);
                attrInit = rc == 0;
            }
            // sigemptyset/sigfillset report failure as -1 + errno, the posix_spawn family returns it.
            if (rc == 0 && (Libc.sigemptyset(sigmask) != 0 || Libc.sigfillset(sigdef) != 0)) rc = Libc.Errno;
            if (rc == 0) rc = Libc.posix_spawnattr_setsigmask(attr, sigmask);
            if (rc == 0) rc = Libc.posix_spawnattr_setsigdefault(attr, sigdef);
            if (rc == 0)
                rc = Libc.posix_spawnattr_setflags(attr, (short)(Libc.POSIX_SPAWN_SETSID | Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF));
            if (rc != 0)
            {
                errno = rc;
                return null;
            }

            byte** argvp = StringArray(native, argv);
            byte** envp = StringArray(native, env);
            int pid;
            rc = Libc.posix_spawn(&pid, Utf8(native, executable), fa, attr, argvp, envp);
            if (rc != 0)
            {
                errno = rc;
                return null;
            }
            errno = 0;
            var result = new SpawnedProcess(pid, withStdin ? stdinPipe[1] : -1, stdoutPipe[0], stderrPipe[0]); // -1s with a tty
            // Ownership of the parent ends moves to the result.
            stdinPipe[1] = stdoutPipe[0] = stderrPipe[0] = -1;
            return result;
        }
        finally
        {
            // Destroy cannot fail in a way that matters here: the memory is freed right after.
            if (faInit) _ = Libc.posix_spawn_file_actions_destroy(fa);
            if (attrInit) _ = Libc.posix_spawnattr_destroy(attr);
            NativeMemory.Free(fa);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigmask);
            NativeMemory.Free(sigdef);
            foreach (var p in native) NativeMemory.Free((void*)p);
            foreach (int fd in new[] { stdinPipe[0], stdinPipe[1], stdoutPipe[0], stdoutPipe[1], stderrPipe[0], stderrPipe[1] })
                if (fd >= 0) Libc.close(fd);
        }
    }

    private static void SetNonBlocking(int fd)
    {
        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
        Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK);
    }

    internal static byte* Utf8(List<nint> owned, string s)
    {
        int len = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)len + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, len));
        p[len] = 0;
        owned.Add((nint)p);
        return p;
    }

    internal static byte** StringArray(List<nint> owned, IReadOnlyList<string> items)
    {
        byte** array = (byte**)NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
        owned.Add((nint)array);
        for (int i = 0; i < items.Count; i++) array[i] = Utf8(owned, items[i]);
        return array;
    }
}
