using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.Guest;

namespace Bough.Engine.Lifecycle;

/// <summary>
/// The live half of a sandbox: its catalog record, its VM and its agent channel. Created
/// and replaced only under the sandbox's lifecycle lease; read by anyone.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim needs disposing only once its AvailableWaitHandle is used, which Bough never does; this lives as long as the daemon (or its sandbox).")]
internal sealed class SandboxRuntime(SandboxRecord record)
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _persist = new(1, 1);
    private SandboxRecord _record = record;

    public string Id { get; } = record.Id;

    /// <summary>Held while (re)connecting the agent so concurrent callers share one attempt (<see cref="LockOrder.AgentGate"/>).</summary>
    public SemaphoreSlim AgentGate { get; } = new(1, 1);

    public SandboxRecord Record { get { lock (_gate) return _record; } }

    public IVm? Vm { get; set; }
    public IGuestAgent? Agent { get; set; }

    /// <summary>The agent-port watcher of <see cref="Vm"/>; ended when the runtime's channel closes.</summary>
    public IDisposable? AgentPortWatch { get; set; }

    /// <summary>Set once a delete, pause or shutdown begins, so the exit watcher does not call it a crash.</summary>
    public volatile bool Stopping;

    /// <summary>
    /// Changes the record atomically: the exit watcher and a capture may update it at the same
    /// time, and a read-modify-write outside the lock would let one undo the other.
    /// A state change must be legal (<see cref="SandboxTransitions"/>).
    /// </summary>
    public SandboxRecord Update(Func<SandboxRecord, SandboxRecord> change)
    {
        lock (_gate)
        {
            var next = change(_record);
            SandboxTransitions.Ensure(Id, _record.State, next.State);
            _record = next;
            return next;
        }
    }

    /// <summary>
    /// <see cref="Update"/>, then writes the record as it is <em>now</em> to the catalog. Writes
    /// are serialised and always carry the latest record, so two updaters racing (exit watcher
    /// and capture) end with a row holding both changes. <paramref name="asStored"/> adjusts
    /// what is written (a resume keeps the row 'paused' until the VM runs).
    /// </summary>
    public async Task<SandboxRecord> UpdateAsync(SandboxStore store, Func<SandboxRecord, SandboxRecord> change,
        Func<SandboxRecord, SandboxRecord>? asStored = null)
    {
        var updated = Update(change);
        await _persist.WaitAsync(CancellationToken.None);
        try
        {
            var now = Record;
            await store.UpdateAsync(asStored is null ? now : asStored(now), CancellationToken.None);
        }
        finally
        {
            _persist.Release();
        }
        return updated;
    }
}
