using System.Diagnostics;
using System.Reflection;
using Bough.Agent.Users;

namespace Bough.Agent;

/// <summary>
/// State that outlives sessions and channels: the configured exec defaults (environment, working
/// directory, user; a daemon restart opens a new session but the guest's configuration stays),
/// the process table, start time, and settings.
/// </summary>
internal sealed class AgentState(AgentLog log, string hostnameFile, string etcDir = "/etc",
    int maxListEntries = Operations.ListOperation.DefaultMaxListEntries, Processes.ProcessTableOptions? processOptions = null)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _defaultEnv = new(StringComparer.Ordinal)
    {
        ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    };
    private string? _defaultCwd;
    private string? _defaultUser;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();

    public AgentLog Log { get; } = log;

    /// <summary>File rewritten by configure's hostname (the tests point it elsewhere to keep the host untouched).</summary>
    public string HostnameFile { get; } = hostnameFile;

    /// <summary>Resolves exec users against <c>etcDir</c>/passwd and /group (the guest's /etc).</summary>
    public UserResolver Users { get; } = new(etcDir);

    /// <summary>Entries one listing may have before it ends with too_large.</summary>
    public int MaxListEntries { get; } = maxListEntries;

    /// <summary>Processes started with proc.start; they outlive sessions, as this state does.</summary>
    public Processes.ProcessTable Processes { get; } = new(processOptions ?? new Processes.ProcessTableOptions());

    /// <summary>The trampoline that runs commands as other users (loaded on first use).</summary>
    public ExecAs ExecAs { get; } = new();

    public static string Version { get; } =
        typeof(AgentState).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public long UptimeMs => _uptime.ElapsedMilliseconds;

    /// <summary>A copy of the exec defaults; HOME is absent unless configured (exec derives it from the user).</summary>
    public (Dictionary<string, string> Env, string? Cwd, string? User) SnapshotDefaults()
    {
        lock (_lock) return (new Dictionary<string, string>(_defaultEnv, StringComparer.Ordinal), _defaultCwd, _defaultUser);
    }

    public void MergeDefaultEnv(IReadOnlyDictionary<string, string> env)
    {
        lock (_lock)
            foreach (var (k, v) in env) _defaultEnv[k] = v;
    }

    public void SetDefaultCwd(string cwd)
    {
        lock (_lock) _defaultCwd = cwd.Length == 0 ? null : cwd;
    }

    public void SetDefaultUser(string user)
    {
        lock (_lock) _defaultUser = user.Length == 0 ? null : user;
    }

    public static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static string BootId() => ReadTrimmed("/proc/sys/kernel/random/boot_id") ?? "";

    public static string Hostname() => ReadTrimmed("/proc/sys/kernel/hostname") ?? Environment.MachineName;
}
