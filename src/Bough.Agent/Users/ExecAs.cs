using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Bough.Agent.Native;
using Bough.Agent.Operations;

namespace Bough.Agent.Users;

/// <summary>
/// Runs a command as another user. posix_spawn cannot change credentials and a managed runtime must
/// not fork, so the agent spawns <em>itself</em> in this trampoline mode (same file actions, session and
/// cwd as any exec), and the trampoline drops to the user and execve's the command, keeping its pid:
/// <code>bough-agent --exec-as UID GID G1,G2,.. ENVCOUNT K=V.. -- EXE ARGV0 ARGV..</code>
/// The command's environment travels in argv, not in the trampoline's own environment: the trampoline
/// needs the agent's (LD_LIBRARY_PATH=/.bough/lib for its private loader, DOTNET_*), and the command
/// must get exactly what the caller asked for, nothing of the agent's. Signal dispositions the runtime
/// changed (SIGPIPE is ignored by .NET, and an ignored signal stays ignored across execve) and the
/// signal mask are reset before execve. Failures are reported on stderr with 127/126 like a shell.
/// </summary>
internal static unsafe class ExecAs
{
    public const string Flag = "--exec-as";

    /// <summary>The trampoline's argv for a command (argv[0] is filled in by the spawner from the executable path).</summary>
    public static List<string> BuildArgv(string agentPath, ResolvedUser user, string executable, IReadOnlyList<string> argv, IReadOnlyList<string> env)
    {
        var list = new List<string>(argv.Count + env.Count + 8)
        {
            agentPath, Flag,
            user.Uid.ToString(CultureInfo.InvariantCulture),
            user.Gid.ToString(CultureInfo.InvariantCulture),
            string.Join(',', user.Groups.Select(g => g.ToString(CultureInfo.InvariantCulture))),
            env.Count.ToString(CultureInfo.InvariantCulture),
        };
        list.AddRange(env);
        list.Add("--");
        list.Add(executable);
        list.AddRange(argv);
        return list;
    }

    /// <summary>Trampoline entry (args without the program name; args[0] is <see cref="Flag"/>). Returns only on failure.</summary>
    public static int Run(string[] args)
    {
        try
        {
            int i = 1;
            uint uid = ParseId(args[i++]);
            uint gid = ParseId(args[i++]);
            uint[] groups = args[i] == "" ? [] : args[i].Split(',').Select(ParseId).ToArray();
            i++;
            int envCount = int.Parse(args[i++], NumberStyles.None, CultureInfo.InvariantCulture);
            var env = args.AsSpan(i, envCount).ToArray();
            i += envCount;
            if (args[i++] != "--") throw new FormatException("missing --");
            string executable = args[i++];
            var argv = args.AsSpan(i).ToArray();
            if (argv.Length == 0) throw new FormatException("missing argv");

            fixed (uint* g = groups)
            {
                if (Libc.setgroups((nuint)groups.Length, g) != 0) return Fail(126, "setgroups", Libc.Errno);
            }
            if (Libc.setresgid(gid, gid, gid) != 0) return Fail(126, "setresgid", Libc.Errno);
            if (Libc.setresuid(uid, uid, uid) != 0) return Fail(126, "setresuid", Libc.Errno);

            ResetSignals();
            var owned = new List<nint>();
            int errno;
            try
            {
                Libc.execve(ProcessSpawner.Utf8(owned, executable), ProcessSpawner.StringArray(owned, argv), ProcessSpawner.StringArray(owned, env));
                errno = Libc.Errno;
            }
            finally
            {
                foreach (var p in owned) NativeMemory.Free((void*)p);
            }
            return Fail(errno == Libc.ENOENT ? 127 : 126, argv[0], errno);
        }
        catch (Exception e) when (e is FormatException or OverflowException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return Fail(126, $"invalid {Flag} arguments ({e.Message})", 0);
        }
    }

    private static void ResetSignals()
    {
        var dfl = new Libc.KernelSigaction { Handler = Libc.SIG_DFL };
        for (int sig = 1; sig <= 64; sig++)
            if (sig is not (9 or 19)) Libc.syscall(Libc.SYS_rt_sigaction, sig, (nint)(&dfl), 0, sizeof(ulong));
        ulong empty = 0; // the kernel's sigset_t is 64 bits
        Libc.syscall(Libc.SYS_rt_sigprocmask, Libc.SIG_SETMASK, (nint)(&empty), 0, sizeof(ulong));
    }

    private static uint ParseId(string s) => uint.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>Writes straight to fd 2 (the command's stderr pipe): Console may not be usable this early.</summary>
    private static int Fail(int code, string what, int errno)
    {
        var bytes = Encoding.UTF8.GetBytes($"bough-agent: {what}{(errno != 0 ? ": " + Libc.StrError(errno) : "")}\n");
        fixed (byte* p = bytes) Libc.write(2, p, bytes.Length);
        return code;
    }
}
