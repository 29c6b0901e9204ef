using Bough.AgentClient;

namespace Bough.Engine.Guest;

/// <summary>
/// The agent's process table and newer file operations, a capability of an <see cref="IGuestAgent"/>
/// beside the core seam (so fakes of the core need not implement it). <see cref="Features"/> is
/// what the agent announced in its handshake: an agent baked into an older image lacks some.
/// </summary>
public interface IGuestProcessAgent
{
    IReadOnlySet<string> Features { get; }
    Task<int> StartProcessAsync(ProcessSpec spec, CancellationToken ct);
    IAsyncEnumerable<ProcessEvent> StartProcessAttachedAsync(ProcessSpec spec, AttachOptions? options, CancellationToken ct);
    IAsyncEnumerable<ProcessEvent> AttachProcessAsync(ProcessSelector process, AttachOptions? options, CancellationToken ct);
    Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(bool includeExited, CancellationToken ct);
    Task SendProcessInputAsync(ProcessSelector process, Stream input, CancellationToken ct);
    Task CloseProcessStdinAsync(ProcessSelector process, CancellationToken ct);
    Task<bool> SignalProcessAsync(ProcessSelector process, int signal, CancellationToken ct);
    Task ResizeProcessAsync(ProcessSelector process, PtySize size, CancellationToken ct);
    Task<AgentFileEntry> StatAsync(string path, CancellationToken ct);
    Task<bool> ExistsAsync(string path, CancellationToken ct);
    Task<bool> MkdirAsync(string path, CancellationToken ct);
    Task<AgentFileEntry> MoveAsync(string source, string destination, CancellationToken ct);
    IAsyncEnumerable<WatchEvent> WatchAsync(string path, WatchOptions options, CancellationToken ct);
    Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, int depth, ListLimits limits, CancellationToken ct);
}
