using System.Diagnostics;
using System.Text;
using Bough.AgentClient;
using Microsoft.Extensions.Logging;

namespace Bough.Agent.Tests;

/// <summary>The real agent binary (the Debug/Release build output of src/Bough.Agent) running in --listen-unix mode.</summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;
    private readonly StringBuilder _log = new();

    public string SocketPath { get; }
    public string Directory => _dir.Path;
    public int Pid => _process.Id;
    public string Log { get { lock (_log) return _log.ToString(); } }

    private AgentProcess(Process process, TempDir dir, string socketPath)
    {
        _process = process;
        _dir = dir;
        SocketPath = socketPath;
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
    }

    public static string BinaryPath()
    {
        var env = Environment.GetEnvironmentVariable("BOUGH_AGENT_BINARY");
        if (!string.IsNullOrEmpty(env)) return env;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "src", "Bough.Agent", "Bough.Agent.csproj"))) dir = dir.Parent;
        if (dir == null) throw new InvalidOperationException("repository root not found");
#if DEBUG
        const string config = "Debug";
#else
        const string config = "Release";
#endif
        return Path.Combine(dir.FullName, "src", "Bough.Agent", "bin", config, "net10.0", "linux-x64", "bough-agent");
    }

    /// <summary>Starts the agent; <paramref name="isolatedUts"/> wraps it in `unshare --uts` so configure's hostname cannot touch the host.</summary>
    /// <param name="extraArgs">Appended to the agent's command line (e.g. --etc DIR).</param>
    /// <param name="environment">Added to the agent's own environment (to check nothing of it reaches commands).</param>
    public static async Task<AgentProcess> StartAsync(bool isolatedUts = false, IEnumerable<string>? extraArgs = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var dir = new TempDir("agent");
        string socket = dir.Combine("agent.sock");
        var psi = new ProcessStartInfo { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (isolatedUts)
        {
            psi.FileName = "unshare";
            psi.ArgumentList.Add("--uts");
            psi.ArgumentList.Add(BinaryPath());
        }
        else psi.FileName = BinaryPath();
        foreach (var a in new[] { "--listen-unix", socket, "--hostname-file", dir.Combine("hostname") }) psi.ArgumentList.Add(a);
        foreach (var a in extraArgs ?? []) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("agent did not start");
        var agent = new AgentProcess(process, dir, socket);
        bool listening = await Poll.UntilAsync(() => File.Exists(socket) || process.HasExited, TimeSpan.FromSeconds(30),
            TimeSpan.FromMilliseconds(20));
        if (process.HasExited) throw new InvalidOperationException($"agent exited: {agent.Log}");
        if (!listening) throw new TimeoutException($"agent socket did not appear: {agent.Log}");
        return agent;
    }

    public Task<AgentConnection> ConnectAsync(ILogger? logger = null) =>
        AgentConnection.ConnectAsync(SocketPath, logger ?? new TestLogger(), TimeSpan.FromSeconds(20), CancellationToken.None);

    public bool HasExited => _process.HasExited;

    public long RssBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        await _process.WaitForExitAsync();
        _process.Dispose();
        _dir.Dispose();
    }
}

/// <summary>One agent process shared by a test class.</summary>
public sealed class AgentFixture : IAsyncLifetime
{
    public AgentProcess Agent { get; private set; } = null!;
    public AgentConnection Connection { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Agent = await AgentProcess.StartAsync();
        Connection = await Agent.ConnectAsync();
    }

    public async Task DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Agent.DisposeAsync();
    }
}

/// <summary>Collects log lines so tests can assert that exactly one error was logged.</summary>
public sealed class TestLogger : ILogger
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries { get { lock (_entries) return _entries.ToList(); } }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries) _entries.Add((logLevel, formatter(state, exception)));
    }
}

public static class ExecHelpers
{
    public static Task<(ExecEvent.Exit Exit, byte[] Stdout, byte[] Stderr)> Run(this AgentConnection c, params string[] argv) =>
        c.RunToCompletionAsync(new ExecSpec { Argv = argv }, Timeout(60));

    public static string Text(this byte[] bytes) => Encoding.UTF8.GetString(bytes);

    public static CancellationToken Timeout(int seconds) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
