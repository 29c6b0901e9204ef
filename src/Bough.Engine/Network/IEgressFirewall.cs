using Bough.Catalog;

namespace Bough.Engine.Network;

/// <summary>
/// What one sandbox's VM may reach. The fixed rules (never the host, its loopback or addresses,
/// other sandboxes, private, link-local or multicast ranges, or IPv6) hold for every sandbox;
/// <paramref name="Internet"/> and <paramref name="Rules"/> are the sandbox's own policy.
/// </summary>
public sealed record EgressPolicy(bool Internet, EgressRules? Rules);

/// <summary>
/// The host firewall for sandbox traffic, keyed by the unprivileged uid each sandbox's QEMU runs
/// as (its user-mode network stack opens real sockets as that uid). The seam between the engine
/// and nftables; engine tests use a fake.
/// </summary>
public interface IEgressFirewall
{
    /// <summary>Installs or replaces the rules for <paramref name="vmUid"/> before its VM starts (and on a policy change).</summary>
    Task ApplyAsync(string sandboxId, int vmUid, EgressPolicy policy, CancellationToken ct);

    /// <summary>Removes the rules for <paramref name="vmUid"/> once its VM is gone.</summary>
    Task RemoveAsync(string sandboxId, int vmUid, CancellationToken ct);

    /// <summary>Graceful shutdown with every VM stopped: removes every rule this daemon installed (its whole table).</summary>
    Task RemoveAllAsync(CancellationToken ct);

    /// <summary>Start-up: makes the installed rules exactly those of the live sandboxes (drops leftovers of a crash).</summary>
    Task ReconcileAsync(IReadOnlyCollection<(string SandboxId, int VmUid, EgressPolicy Policy)> live, CancellationToken ct);
}
