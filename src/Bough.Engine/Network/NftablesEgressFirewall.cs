using Bough.Network;

namespace Bough.Engine.Network;

/// <summary>The real <see cref="IEgressFirewall"/>: Bough.Network's nftables table, keyed by VM uid.</summary>
internal sealed class NftablesEgressFirewall(NftablesFirewall firewall) : IEgressFirewall
{
    public Task ApplyAsync(string sandboxId, int vmUid, EgressPolicy policy, CancellationToken ct) =>
        firewall.ApplyAsync(sandboxId, vmUid, ToVm(policy), ct);

    public Task RemoveAsync(string sandboxId, int vmUid, CancellationToken ct) =>
        firewall.RemoveAsync(sandboxId, vmUid, ct);

    public Task RemoveAllAsync(CancellationToken ct) => firewall.RemoveAllAsync(ct);

    public Task ReconcileAsync(IReadOnlyCollection<(string SandboxId, int VmUid, EgressPolicy Policy)> live, CancellationToken ct) =>
        firewall.ReconcileAsync(live.Select(l => (l.SandboxId, l.VmUid, ToVm(l.Policy))).ToList(), ct);

    internal static VmEgressPolicy ToVm(EgressPolicy p) => new(p.Internet, p.Rules?.AllowOut, p.Rules?.DenyOut);
}
