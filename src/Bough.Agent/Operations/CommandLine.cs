using Bough.Agent.Native;
using Bough.Agent.Users;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// A command ready to spawn: argv validated, environment merged (defaults, then the request, then
/// HOME from the user), user resolved, cwd checked and argv[0] resolved on the command's own PATH.
/// <see cref="Executable"/> is null when argv[0] was not found there.
/// </summary>
internal sealed record PreparedCommand(string? Executable, IReadOnlyList<string> Argv, IReadOnlyList<string> Env, string Cwd,
    ResolvedUser? User, string? UserSpec);

/// <summary>
/// What exec and proc.start share: the same validation, environment, user, cwd and PATH rules
/// (docs/protocol.md, "Exec"), and the spawn itself, directly or through the exec-as trampoline.
/// </summary>
internal static class CommandLine
{
    public const int MaxArgs = 65536;

    public static PreparedCommand Prepare(List<string>? argv, Dictionary<string, string>? requestEnv, string? requestCwd,
        string? requestUser, AgentState state)
    {
        if (argv is not { Count: > 0 } || argv.Count > MaxArgs || argv.Any(a => a == null || a.Contains('\0')) || argv[0].Length == 0)
            throw new AgentError(ErrorCodes.BadRequest, "argv must be a non-empty list of strings without NUL bytes");
        if (requestEnv != null) ValidateEnv(requestEnv);

        var (env, defaultCwd, defaultUser) = state.SnapshotDefaults();
        string? userSpec = string.IsNullOrEmpty(requestUser) ? defaultUser : requestUser;
        ResolvedUser? user = userSpec == null ? null : state.Users.Resolve(userSpec);
        string cwd = ResolveCwd(requestCwd ?? defaultCwd);
        if (requestEnv != null) foreach (var (k, v) in requestEnv) env[k] = v;
        // Docker's rule: HOME from the user's passwd entry unless the image or the caller set one.
        if (!env.ContainsKey("HOME"))
            env["HOME"] = user?.Home ?? (user == null || user.Uid == 0 ? "/root" : "/");
        string? executable = ResolveExecutable(argv[0], env.GetValueOrDefault("PATH") ?? "", cwd);
        return new PreparedCommand(executable, argv, [.. env.Select(kv => $"{kv.Key}={kv.Value}")], cwd, user, userSpec);
    }

    /// <summary>
    /// Spawns a prepared command (its <see cref="PreparedCommand.Executable"/> must be set), as its user
    /// through the trampoline when that is not root. <paramref name="ttyPath"/>: a pty slave for all three
    /// standard descriptors instead of pipes. Returns null with the errno when the spawn failed.
    /// </summary>
    public static SpawnedProcess? Spawn(PreparedCommand command, AgentState state, bool stdin, string? ttyPath, out int errno)
    {
        string executable = command.Executable ?? throw new InvalidOperationException("command has no executable");
        if (command.User is null or { IsRoot: true })
            return ProcessSpawner.Spawn(executable, command.Argv, command.Env, command.Cwd, stdin, out errno, ttyPath);
        string trampoline = state.ExecAs.Path();
        return ProcessSpawner.Spawn(trampoline, ExecAs.BuildArgv(trampoline, command.User, executable, command.Argv),
            command.Env, command.Cwd, stdin, out errno, ttyPath);
    }

    public static void ValidateEnv(IReadOnlyDictionary<string, string> env)
    {
        if (env.Count > 4096) throw new AgentError(ErrorCodes.BadRequest, "too many environment variables");
        foreach (var (k, v) in env)
        {
            if (string.IsNullOrEmpty(k) || k.Contains('=') || k.Contains('\0') || v == null || v.Contains('\0'))
                throw new AgentError(ErrorCodes.BadRequest, $"invalid environment variable '{k}'");
        }
    }

    /// <summary>
    /// Without a request or configured cwd: /root, or / when the image has none. A given cwd must exist
    /// (the image builder creates an image's WorkingDir, so a configured default does).
    /// </summary>
    private static string ResolveCwd(string? cwd)
    {
        if (cwd == null)
            return FileStat.TryGet("/root", true, out var root) == 0 && root.IsDirectory ? "/root" : "/";
        AgentError.RequireAbsolute(cwd, "cwd");
        int err = FileStat.TryGet(cwd, true, out var st);
        if (err == Libc.ENOENT) throw new AgentError(ErrorCodes.FileNotFound, $"working directory does not exist: {cwd}");
        if (err != 0) throw AgentError.FromErrno(err, "cwd", cwd);
        if (!st.IsDirectory) throw new AgentError(ErrorCodes.NotADirectory, $"working directory is not a directory: {cwd}");
        return cwd;
    }

    /// <summary>
    /// posix_spawnp would search the agent's own PATH; the command's PATH is what a shell would use.
    /// Names containing '/' are used as given (relative ones resolve against cwd in the child).
    /// </summary>
    private static string? ResolveExecutable(string name, string path, string cwd)
    {
        if (name.Contains('/')) return name;
        foreach (var dir in path.Split(':'))
        {
            string baseDir = dir.Length == 0 ? cwd : dir.StartsWith('/') ? dir : Path.Combine(cwd, dir);
            string candidate = Path.Combine(baseDir, name);
            if (FileStat.TryGet(candidate, true, out var st) == 0 && st.IsRegular && (st.Mode & 0x49) != 0)
                return candidate;
        }
        return null;
    }
}
