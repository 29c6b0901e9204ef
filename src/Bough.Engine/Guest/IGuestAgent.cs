using Bough.AgentClient;

namespace Bough.Engine.Guest;

/// <summary>
/// The guest agent as the engine uses it. The real one is <see cref="AgentConnection"/>
/// (behind <see cref="AgentConnector"/>); engine tests use a fake.
/// </summary>
public interface IGuestAgent : IAsyncDisposable
{
    bool IsConnected { get; }
    Task ConfigureAsync(GuestConfig config, CancellationToken ct);
    IAsyncEnumerable<ExecEvent> ExecAsync(ExecSpec spec, CancellationToken ct);
    Task WriteFileAsync(string path, Stream content, CancellationToken ct);

    /// <summary>Opens a file; the returned reader's stream is the content, disposing it ends the transfer.</summary>
    Task<GuestFileReader> OpenReadAsync(string path, CancellationToken ct);
    Task RemoveAsync(string path, bool recursive, CancellationToken ct);
    /// <summary>Lists a directory; past <paramref name="limits"/> it throws <see cref="AgentException.TooLarge"/>.</summary>
    Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, ListLimits limits, CancellationToken ct);
}

/// <summary>An open guest file: its length, its bytes, and who to dispose when done.</summary>
public sealed record GuestFileReader(long Length, Stream Content, IAsyncDisposable Owner);

/// <summary>Connects to a guest agent over the VM's agent socket.</summary>
public interface IAgentConnector
{
    Task<IGuestAgent> ConnectAsync(string sandboxId, string agentSocketPath, TimeSpan timeout, CancellationToken ct);
}
