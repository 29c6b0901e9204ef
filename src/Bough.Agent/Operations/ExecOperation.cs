using System.Diagnostics;
using System.Text;
using Bough.Agent.Native;
using Bough.Agent.Users;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// exec: validates the request, resolves argv[0] against the command's own PATH, spawns it as the
/// leader of a new session and hands it to <see cref="ExecIoLoop"/>. A command that cannot be
/// found or executed reports exit code 127 / 126 with a message on stderr, like a shell would, so
/// callers handle it like any failing command.
/// </summary>
internal static class ExecOperation
{
    public const long MaxTimeoutMs = 7L * 24 * 3600 * 1000;
    public const int MaxArgs = 65536;

    public static async Task<EndMessage> RunAsync(ExecRequest request, AgentStream stream, AgentState state)
    {
        if (request.Argv is not { Count: > 0 } argv || argv.Count > MaxArgs || argv.Any(a => a == null || a.Contains('\0')) || argv[0].Length == 0)
            throw new AgentError(ErrorCodes.BadRequest, "argv must be a non-empty list of strings without NUL bytes");
        if (request.TimeoutMs is { } t && (t <= 0 || t > MaxTimeoutMs))
            throw new AgentError(ErrorCodes.BadRequest, $"timeoutMs must be 1..{MaxTimeoutMs}");
        if (request.Env != null) ValidateEnv(request.Env);

        var (env, defaultCwd, defaultUser) = state.SnapshotDefaults();
        string? userSpec = string.IsNullOrEmpty(request.User) ? defaultUser : request.User;
        ResolvedUser? user = userSpec == null ? null : state.Users.Resolve(userSpec);
        string cwd = ResolveCwd(request.Cwd ?? defaultCwd);
        if (request.Env != null) foreach (var (k, v) in request.Env) env[k] = v;
        // Docker's rule: HOME from the user's passwd entry unless the image or the caller set one.
        if (!env.ContainsKey("HOME"))
            env["HOME"] = user?.Home ?? (user == null || user.Uid == 0 ? "/root" : "/");
        var envList = env.Select(kv => $"{kv.Key}={kv.Value}").ToList();

        var watch = Stopwatch.StartNew();
        string? executable = ResolveExecutable(argv[0], env.GetValueOrDefault("PATH") ?? "", cwd);
        if (executable == null)
            return await FailLikeShellAsync(stream, 127, $"{argv[0]}: command not found", watch).ConfigureAwait(false);

        var process = user is null or { IsRoot: true }
            ? ProcessSpawner.Spawn(executable, argv, envList, cwd, request.Stdin, out int errno)
            : SpawnAs(state.ExecAs.Path(), user, executable, argv, envList, cwd, request.Stdin, out errno);
        if (process == null)
        {
            if (errno == Libc.ENOENT && !Directory.Exists(cwd))
                throw new AgentError(ErrorCodes.FileNotFound, $"working directory does not exist: {cwd}");
            int code = errno == Libc.ENOENT ? 127 : 126;
            return await FailLikeShellAsync(stream, code, $"{argv[0]}: {Libc.StrError(errno)}", watch).ConfigureAwait(false);
        }
        stream.Log.Debug($"stream {stream.Id}: spawned pid {process.Pid}: {string.Join(' ', argv)}");
        var loop = new ExecIoLoop(stream, process, request.TimeoutMs, watch);
        return new EndMessage { Exit = await loop.RunAsync().ConfigureAwait(false) };
    }

    private static SpawnedProcess? SpawnAs(string trampoline, ResolvedUser user, string executable, IReadOnlyList<string> argv,
        IReadOnlyList<string> env, string cwd, bool stdin, out int errno) =>
        ProcessSpawner.Spawn(trampoline, ExecAs.BuildArgv(trampoline, user, executable, argv), env, cwd, stdin, out errno);

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

    private static async Task<EndMessage> FailLikeShellAsync(AgentStream stream, int code, string message, Stopwatch watch)
    {
        await stream.SendDataAsync(DataChannel.Stderr, Encoding.UTF8.GetBytes($"bough-agent: {message}\n")).ConfigureAwait(false);
        return new EndMessage { Exit = new ExitDto { ExitCode = code, DurationMs = watch.ElapsedMilliseconds } };
    }
}
