using System.Diagnostics;
using System.Reflection;

namespace Bough.Agent;

/// <summary>
/// State that outlives sessions and channels: the configured default environment (a daemon restart
/// opens a new session but the guest's configuration stays), start time, and settings.
/// </summary>
internal sealed class AgentState(AgentLog log, string hostnameFile)
{
    private readonly object _envLock = new();
    private readonly Dictionary<string, string> _defaultEnv = new(StringComparer.Ordinal)
    {
        ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ["HOME"] = "/root",
    };
    private readonly Stopwatch _uptime = Stopwatch.StartNew();

    public AgentLog Log { get; } = log;

    /// <summary>File rewritten by configure's hostname (the tests point it elsewhere to keep the host untouched).</summary>
    public string HostnameFile { get; } = hostnameFile;

    public static string Version { get; } =
        typeof(AgentState).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public long UptimeMs => _uptime.ElapsedMilliseconds;

    public Dictionary<string, string> SnapshotDefaultEnv()
    {
        lock (_envLock) return new Dictionary<string, string>(_defaultEnv, StringComparer.Ordinal);
    }

    public void MergeDefaultEnv(IReadOnlyDictionary<string, string> env)
    {
        lock (_envLock)
            foreach (var (k, v) in env) _defaultEnv[k] = v;
    }

    public static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static string BootId() => ReadTrimmed("/proc/sys/kernel/random/boot_id") ?? "";

    public static string Hostname() => ReadTrimmed("/proc/sys/kernel/hostname") ?? Environment.MachineName;
}
