namespace Bough.Network;

/// <summary>What the firewall holds for one VM uid: whose it is and what it may reach.</summary>
/// <param name="SandboxId">The sandbox the uid belongs to, kept to refuse removing a uid another sandbox now uses and to label the rules.</param>
/// <param name="Internet">False: the uid's chain refuses everything.</param>
/// <param name="Egress">The allow and deny lists folded into a default and its exceptions.</param>
internal sealed record UidRules(string SandboxId, bool Internet, EffectiveEgress Egress)
{
    public static UidRules From(string sandboxId, ParsedEgressPolicy policy) =>
        new(sandboxId, policy.Internet, EffectiveEgress.Compute(policy.Allow, policy.Deny));

    /// <summary>Nothing leaves: for a sandbox whose stored policy no longer validates.</summary>
    public static UidRules Closed(string sandboxId) => new(sandboxId, false, new EffectiveEgress(false, []));
}
