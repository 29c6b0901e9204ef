using System.Globalization;
using Bough.Agent.Native;

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
    /// <summary>Native/exec-as.c, compiled by the agent's build and embedded.</summary>
    private readonly EmbeddedExecutable _trampoline = new("exec-as");

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

    /// <summary><c>/proc/self/fd/N</c> of the sealed memfd holding the trampoline.</summary>
    public string Path() => _trampoline.Path();
}
