using System.Collections.Concurrent;
using Bough.Engine.Network;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake <see cref="IEgressFirewall"/>: the real one changes the host's nftables, which engine
/// tests must not touch. Records every call; <see cref="FailNext"/> makes the next apply throw.
/// </summary>
internal sealed class FakeEgressFirewall : IEgressFirewall
{
    public ConcurrentQueue<(string SandboxId, int VmUid, EgressPolicy Policy)> Applied { get; } = new();

    public Func<Exception>? FailNext { get; set; }

    public Task ApplyAsync(string sandboxId, int vmUid, EgressPolicy policy, CancellationToken ct)
    {
        Applied.Enqueue((sandboxId, vmUid, policy));
        if (FailNext is { } fail)
        {
            FailNext = null;
            throw fail();
        }
        return Task.CompletedTask;
    }

    public ConcurrentQueue<(string SandboxId, int VmUid)> Removed { get; } = new();

    public ConcurrentQueue<IReadOnlyCollection<(string SandboxId, int VmUid, EgressPolicy Policy)>> Reconciled { get; } = new();

    public Task RemoveAsync(string sandboxId, int vmUid, CancellationToken ct)
    {
        Removed.Enqueue((sandboxId, vmUid));
        return Task.CompletedTask;
    }

    public int RemovedAll { get; private set; }

    public Task RemoveAllAsync(CancellationToken ct)
    {
        RemovedAll++;
        return Task.CompletedTask;
    }

    public Task ReconcileAsync(IReadOnlyCollection<(string SandboxId, int VmUid, EgressPolicy Policy)> live, CancellationToken ct)
    {
        Reconciled.Enqueue(live);
        return Task.CompletedTask;
    }
}
