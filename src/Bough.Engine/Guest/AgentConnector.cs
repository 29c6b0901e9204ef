using Bough.AgentClient;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Guest;

/// <summary>The real <see cref="IAgentConnector"/>: the framed protocol over virtio-serial (docs/protocol.md).</summary>
internal sealed class AgentConnector(ILoggerFactory loggers) : IAgentConnector
{
    public async Task<IGuestAgent> ConnectAsync(string sandboxId, string agentSocketPath, TimeSpan timeout, CancellationToken ct) =>
        new Connection(await AgentConnection.ConnectAsync(agentSocketPath, loggers.CreateLogger("Bough.Agent." + sandboxId), timeout, ct));

    private sealed class Connection(AgentConnection agent) : IGuestAgent, IGuestProcessAgent
    {
        public bool IsConnected => agent.IsConnected;
        public Task ConfigureAsync(GuestConfig config, CancellationToken ct) => agent.ConfigureAsync(config, ct);
        public IAsyncEnumerable<ExecEvent> ExecAsync(ExecSpec spec, CancellationToken ct) => agent.ExecAsync(spec, ct);
        public Task WriteFileAsync(string path, Stream content, CancellationToken ct) => agent.WriteFileAsync(path, content, null, ct);

        public async Task<GuestFileReader> OpenReadAsync(string path, CancellationToken ct)
        {
            var reader = await agent.OpenReadAsync(path, ct);
            return new GuestFileReader(reader.Length, reader.Content, reader);
        }

        public Task RemoveAsync(string path, bool recursive, CancellationToken ct) => agent.RemoveAsync(path, recursive, ct);
        public Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, ListLimits limits, CancellationToken ct) => agent.ListAsync(path, limits, ct);
        public ValueTask DisposeAsync() => agent.DisposeAsync();

        public IReadOnlySet<string> Features => agent.Hello.Features;
        public Task<int> StartProcessAsync(ProcessSpec spec, CancellationToken ct) => agent.StartProcessAsync(spec, ct);
        public IAsyncEnumerable<ProcessEvent> StartProcessAttachedAsync(ProcessSpec spec, AttachOptions? options, CancellationToken ct) =>
            agent.StartProcessAttachedAsync(spec, options, ct);
        public IAsyncEnumerable<ProcessEvent> AttachProcessAsync(ProcessSelector process, AttachOptions? options, CancellationToken ct) =>
            agent.AttachProcessAsync(process, options, ct);
        public Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(bool includeExited, CancellationToken ct) => agent.ListProcessesAsync(includeExited, ct);
        public Task SendProcessInputAsync(ProcessSelector process, Stream input, CancellationToken ct) => agent.SendProcessInputAsync(process, input, ct);
        public Task CloseProcessStdinAsync(ProcessSelector process, CancellationToken ct) => agent.CloseProcessStdinAsync(process, ct);
        public Task<bool> SignalProcessAsync(ProcessSelector process, int signal, CancellationToken ct) =>
            agent.SignalProcessAsync(process, signal, group: true, ct);
        public Task ResizeProcessAsync(ProcessSelector process, PtySize size, CancellationToken ct) => agent.ResizeProcessAsync(process, size, ct);
        public Task<AgentFileEntry> StatAsync(string path, CancellationToken ct) => agent.StatAsync(path, ct);
        public Task<bool> ExistsAsync(string path, CancellationToken ct) => agent.ExistsAsync(path, ct);
        public Task<bool> MkdirAsync(string path, CancellationToken ct) => agent.MkdirAsync(path, ct);
        public Task<AgentFileEntry> MoveAsync(string source, string destination, CancellationToken ct) => agent.MoveAsync(source, destination, ct);
        public IAsyncEnumerable<WatchEvent> WatchAsync(string path, WatchOptions options, CancellationToken ct) => agent.WatchAsync(path, options, ct);
        public Task<IReadOnlyList<AgentFileEntry>> ListAsync(string path, int depth, ListLimits limits, CancellationToken ct) =>
            agent.ListAsync(path, depth, limits, ct);
    }
}
