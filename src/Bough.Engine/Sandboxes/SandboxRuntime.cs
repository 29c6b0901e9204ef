using Bough.AgentClient;
using Bough.Catalog;
using Bough.Vmm;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// The live half of a sandbox: its catalog record, its QEMU process and its agent channel.
/// Owned by <see cref="SandboxManager"/>; the lifecycle lock serialises create/delete/stop
/// of this one sandbox and nothing else, so other sandboxes never wait on it.
/// </summary>
internal sealed class SandboxRuntime(SandboxRecord record)
{
    private readonly object _gate = new();
    private SandboxRecord _record = record;

    public string Id { get; } = record.Id;

    /// <summary>Held for the whole of a lifecycle change (create, delete, stop) of this sandbox.</summary>
    public SemaphoreSlim Lifecycle { get; } = new(1, 1);

    /// <summary>Held while (re)connecting the agent so concurrent callers share one attempt.</summary>
    public SemaphoreSlim AgentGate { get; } = new(1, 1);

    public SandboxRecord Record { get { lock (_gate) return _record; } set { lock (_gate) _record = value; } }

    public VmProcess? Vm { get; set; }
    public AgentConnection? Agent { get; set; }

    /// <summary>The lifecycle operation holding <see cref="Lifecycle"/> now, for 409 messages.</summary>
    public volatile string? Operation;

    /// <summary>Set once a delete or shutdown begins, so the exit watcher does not call it a crash.</summary>
    public volatile bool Stopping;
}
