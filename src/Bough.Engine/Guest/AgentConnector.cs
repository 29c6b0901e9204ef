using Bough.AgentClient;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Guest;

/// <summary>The real <see cref="IAgentConnector"/>: the framed protocol over virtio-serial (docs/protocol.md).</summary>
internal sealed class AgentConnector(ILoggerFactory loggers) : IAgentConnector
{
    public async Task<IGuestAgent> ConnectAsync(string sandboxId, string agentSocketPath, TimeSpan timeout, CancellationToken ct) =>
        new Connection(await AgentConnection.ConnectAsync(agentSocketPath, loggers.CreateLogger("Bough.Agent." + sandboxId), timeout, ct));

    private sealed class Connection(AgentConnection agent) : IGuestAgent
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
    }
}
