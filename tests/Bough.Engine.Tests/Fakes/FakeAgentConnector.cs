using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Bough.AgentClient;
using Bough.Engine.Guest;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake <see cref="IAgentConnector"/>: with no VM there is no guest agent to talk to. Each
/// connect hands out a <see cref="FakeGuestAgent"/>; a test can park or fail the n-th connect
/// (<see cref="Connect"/>). Guest files live in memory per sandbox, so they survive a reconnect.
/// </summary>
internal sealed class FakeAgentConnector : IAgentConnector
{
    private readonly ConcurrentQueue<FakeGuestAgent> _agents = new();
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte[]>> _files = new(StringComparer.Ordinal);

    public CallPoint Connect { get; } = new();

    /// <summary>Every configure any agent received, in order.</summary>
    public ConcurrentQueue<(string SandboxId, GuestConfig Config)> Configs { get; } = new();

    /// <summary>Counts configures, so a test can wait for "n guests are set up".</summary>
    public CountSignal Configured { get; } = new();

    public IReadOnlyList<FakeGuestAgent> Agents => [.. _agents];

    /// <summary>When set and it returns an exception, configure throws it (a guest that refuses the identity, e.g. an image's bad User).</summary>
    public Func<GuestConfig, Exception?>? ConfigureFailure { get; set; }

    /// <summary>When set, every exec runs this instead of the built-in answers (a test's hostile or slow command).</summary>
    public Func<ExecSpec, CancellationToken, IAsyncEnumerable<ExecEvent>>? ExecOverride { get; set; }

    public FakeGuestAgent? LatestFor(string sandboxId) => _agents.LastOrDefault(a => a.SandboxId == sandboxId);

    public int ConnectsFor(string sandboxId) => _agents.Count(a => a.SandboxId == sandboxId);

    public async Task<IGuestAgent> ConnectAsync(string sandboxId, string agentSocketPath, TimeSpan timeout, CancellationToken ct)
    {
        await Connect.PassAsync(ct);
        var agent = new FakeGuestAgent(sandboxId, this, _files.GetOrAdd(sandboxId, _ => new(StringComparer.Ordinal)));
        _agents.Enqueue(agent);
        return agent;
    }

    internal void OnConfigured(string sandboxId, GuestConfig config)
    {
        Configs.Enqueue((sandboxId, config));
        Configured.Increment();
    }
}

/// <summary>
/// A fake guest agent (no VM, so no agent). Exec answers "ok" with exit 0, or for
/// <c>echo ARGS</c> the arguments; files are kept in an in-memory dictionary.
/// </summary>
internal sealed class FakeGuestAgent(string sandboxId, FakeAgentConnector owner, ConcurrentDictionary<string, byte[]> files) : IGuestAgent
{
    private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _connected = true;

    public string SandboxId { get; } = sandboxId;

    public bool IsConnected
    {
        get => _connected;
        set => _connected = value;
    }

    /// <summary>Completes when the engine disposed this connection.</summary>
    public Task Disposed => _disposed.Task;

    public ConcurrentQueue<ExecSpec> Execs { get; } = new();

    /// <summary>Every listing asked for, with the caps the engine passed.</summary>
    public ConcurrentQueue<(string Path, ListLimits Limits)> Lists { get; } = new();

    /// <summary>Every remove asked for (the path as the agent received it).</summary>
    public ConcurrentQueue<string> Removes { get; } = new();

    public Task ConfigureAsync(GuestConfig config, CancellationToken ct)
    {
        EnsureConnected();
        if (owner.ConfigureFailure?.Invoke(config) is { } refused) return Task.FromException(refused);
        owner.OnConfigured(SandboxId, config);
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<ExecEvent> ExecAsync(ExecSpec spec, [EnumeratorCancellation] CancellationToken ct)
    {
        EnsureConnected();
        Execs.Enqueue(spec);
        if (owner.ExecOverride is { } run)
        {
            await foreach (var e in run(spec, ct)) yield return e;
            yield break;
        }
        await Task.Yield();
        // "sleep" stands for a command that runs until it is cancelled.
        if (spec.Argv[0] == "sleep") await Task.Delay(Timeout.Infinite, ct);
        var output = spec.Argv[0] == "echo" ? string.Join(' ', spec.Argv.Skip(1)) + "\n" : "ok";
        yield return new ExecEvent.Stdout(Encoding.UTF8.GetBytes(output));
        yield return new ExecEvent.Exit(0, null, false, 1);
    }

    public async Task WriteFileAsync(string path, Stream content, CancellationToken ct)
    {
        EnsureConnected();
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, ct);
        files[path] = buffer.ToArray();
    }

    public Task<GuestFileReader> OpenReadAsync(string path, CancellationToken ct)
    {
        EnsureConnected();
        if (!files.TryGetValue(path, out var bytes)) throw new AgentException("file_not_found", $"{path}: no such file");
        var stream = new MemoryStream(bytes, writable: false);
        return Task.FromResult(new GuestFileReader(bytes.Length, stream, stream));
    }

    public Task RemoveAsync(string path, bool recursive, CancellationToken ct)
    {
        EnsureConnected();
        Removes.Enqueue(path);
        if (!files.TryRemove(path, out _)) throw new AgentException("file_not_found", $"{path}: no such file");
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, ListLimits limits, CancellationToken ct)
    {
        EnsureConnected();
        Lists.Enqueue((path, limits));
        var prefix = path.TrimEnd('/') + "/";
        var entries = files
            .Where(f => f.Key.StartsWith(prefix, StringComparison.Ordinal) && f.Key.IndexOf('/', prefix.Length) < 0)
            .Select(f => new AgentFileEntry(f.Key[prefix.Length..], AgentFileType.File, f.Value.Length, 0x1a4, DateTimeOffset.UnixEpoch))
            .OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        // The real connection's cap (AgentConnection.ListAsync), so the engine's mapping of it is tested.
        if (entries.Count > limits.MaxEntries) throw new AgentException(AgentException.TooLarge, $"{path} has more than {limits.MaxEntries} entries");
        return Task.FromResult<IReadOnlyList<AgentFileEntry>>(entries);
    }

    public ValueTask DisposeAsync()
    {
        _connected = false;
        _disposed.TrySetResult();
        return ValueTask.CompletedTask;
    }

    private void EnsureConnected()
    {
        if (!_connected) throw new AgentException("agent_unavailable", "the fake agent's channel is closed");
    }
}
