using Microsoft.Extensions.Logging;

namespace Bough.Network;

/// <summary>
/// The host firewall that contains sandbox VMs, keyed by the unprivileged uid each VM's QEMU runs
/// as (its user-mode network stack opens real host sockets as that uid, so nftables sees them on
/// the output path). Bough owns one table (<see cref="NftablesFirewallOptions.TableName"/>) and
/// rebuilds it whole, in one transaction, from the uids this instance holds on every change: a
/// change is idempotent, a failed one leaves the previous rules in force and this instance's view
/// unchanged, and nothing outside the table is touched. Changes are serialised; one instance per
/// table on a host.
/// </summary>
/// <remarks>
/// Fixed for every uid in the VM range: IPv6 refused, the host's own addresses (all interfaces,
/// read at each rebuild, and the kernel's local-address lookup for ones added since), loopback,
/// 0/8, 10/8, 100.64/10, 169.254/16, 172.16/12, 192.168/16, multicast and broadcast refused;
/// replies on connections others opened to the VM (exposed ports) allowed; a uid in the range
/// without a policy here sends nothing. Per uid: see <see cref="VmEgressPolicy"/>.
/// After a daemon restart this instance holds nothing until <see cref="ReconcileAsync"/>, and the
/// first change installs only what it holds: VMs not yet reconciled are cut off, never let out.
/// </remarks>
public sealed class NftablesFirewall : IDisposable
{
    private readonly NftablesFirewallOptions _options;
    private readonly ILogger<NftablesFirewall> _logger;
    private readonly NftCli _nft;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<int, UidRules> _installed = [];

    public NftablesFirewall(NftablesFirewallOptions options, ILogger<NftablesFirewall> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _options = options;
        _logger = logger;
        _nft = new NftCli(options.NftPath, options.CommandTimeout);
    }

    /// <summary>
    /// Installs or replaces the rules for <paramref name="vmUid"/> (before its VM starts, and on a
    /// policy change, which also cuts connections the new policy refuses). Throws
    /// <see cref="InvalidEgressPolicyException"/> for a bad policy (nothing changes),
    /// <see cref="FirewallException"/> when nft fails (the previous rules stay).
    /// </summary>
    public async Task ApplyAsync(string sandboxId, int vmUid, VmEgressPolicy policy, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxId);
        CheckUid(vmUid);
        var rules = UidRules.From(sandboxId, EgressPolicyValidator.Parse(policy));
        await ChangeAsync(current =>
        {
            if (current.TryGetValue(vmUid, out var old) && old.SandboxId != sandboxId)
                _logger.LogWarning("VM uid {Uid} passes from sandbox {Old} to {New}; its rules are replaced", vmUid, old.SandboxId, sandboxId);
            return new Dictionary<int, UidRules>(current) { [vmUid] = rules };
        }, $"apply the egress rules of sandbox {sandboxId} (uid {vmUid})", ct);
    }

    /// <summary>
    /// Removes the rules for <paramref name="vmUid"/> once its VM is gone; the uid then sends
    /// nothing. A no-op (beyond a rebuild) when the uid has no rules; refused with a warning when
    /// another sandbox holds the uid now, since its rules must stay.
    /// </summary>
    public async Task RemoveAsync(string sandboxId, int vmUid, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxId);
        CheckUid(vmUid);
        await ChangeAsync(current =>
        {
            if (!current.TryGetValue(vmUid, out var old))
                return current;
            if (old.SandboxId != sandboxId)
            {
                _logger.LogWarning("not removing the rules of VM uid {Uid}: sandbox {Holder} holds it, not {Asked}", vmUid, old.SandboxId, sandboxId);
                return current;
            }
            var next = new Dictionary<int, UidRules>(current);
            next.Remove(vmUid);
            return next;
        }, $"remove the egress rules of sandbox {sandboxId} (uid {vmUid})", ct);
    }

    /// <summary>
    /// Start-up: makes the installed rules exactly those of <paramref name="live"/>, dropping
    /// leftovers of a crash. One bad entry does not stop the rest: a policy that no longer
    /// validates installs as "nothing leaves" (logged), a uid outside the range is skipped (logged),
    /// a uid listed twice keeps its last entry (logged).
    /// </summary>
    public async Task ReconcileAsync(IReadOnlyCollection<(string SandboxId, int VmUid, VmEgressPolicy Policy)> live, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(live);
        var wanted = new Dictionary<int, UidRules>();
        foreach (var (sandboxId, uid, policy) in live)
        {
            if (!InRange(uid))
            {
                _logger.LogError("sandbox {Sandbox} has VM uid {Uid}, outside the VM range {First}-{Last}: it gets no rules",
                    sandboxId, uid, _options.FirstVmUid, _options.LastVmUid);
                continue;
            }
            if (wanted.TryGetValue(uid, out var dup))
                _logger.LogError("VM uid {Uid} is listed for both {First} and {Second}; keeping {Second}", uid, dup.SandboxId, sandboxId, sandboxId);
            try
            {
                wanted[uid] = UidRules.From(sandboxId, EgressPolicyValidator.Parse(policy));
            }
            catch (InvalidEgressPolicyException e)
            {
                _logger.LogError("sandbox {Sandbox}'s egress policy is invalid ({Problem}); nothing leaves it until it is set again", sandboxId, e.Message);
                wanted[uid] = UidRules.Closed(sandboxId);
            }
        }
        await ChangeAsync(_ => wanted, $"reconcile the egress rules of {wanted.Count} sandboxes", ct);
    }

    /// <summary>Deletes Bough's table entirely (uninstall, tests). VM uids are then unrestricted until the next change.</summary>
    public async Task RemoveAllAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var t = _options.TableName;
            await _nft.ApplyAsync($"table inet {t} {{\n}}\ndelete table inet {t}\n", $"delete the table inet {t}");
            _installed = [];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Checks that <c>nft</c> runs and the kernel accepts every kind of rule this firewall writes,
    /// without changing anything: nft's check mode runs the real script against the kernel and
    /// rolls it back. For start-up and <c>bough doctor</c>.
    /// </summary>
    public async Task CheckAsync(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var probe = new Dictionary<int, UidRules>
        {
            [_options.FirstVmUid] = UidRules.From("probe", EgressPolicyValidator.Parse(new VmEgressPolicy(true, ["203.0.113.0/24"], ["203.0.113.9"]))),
            [_options.LastVmUid] = UidRules.Closed("probe"),
        };
        var script = NftRuleset.Render(_options, HostNetworkFacts.Discover(_options.ResolvConfPath), probe);
        await _nft.RunAsync(["--check", "-f", "-"], script, "check that the kernel accepts Bough's firewall rules");
    }

    /// <summary>The uids this instance has installed rules for.</summary>
    public async Task<IReadOnlyCollection<int>> InstalledUidsAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            return _installed.Keys.Order().ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>Computes the next set of uid rules from the current one, installs it whole, and keeps it only if nft took it.</summary>
    private async Task ChangeAsync(Func<Dictionary<int, UidRules>, Dictionary<int, UidRules>> change, string what, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var next = change(_installed);
            var script = NftRuleset.Render(_options, HostNetworkFacts.Discover(_options.ResolvConfPath), next);
            await _nft.ApplyAsync(script, what);
            _installed = next;
            _logger.LogDebug("firewall table inet {Table} rebuilt: {Count} VM uids", _options.TableName, next.Count);
        }
        finally
        {
            _gate.Release();
        }
    }

    private bool InRange(int uid) => uid >= _options.FirstVmUid && uid <= _options.LastVmUid;

    private void CheckUid(int vmUid)
    {
        if (!InRange(vmUid))
            throw new ArgumentOutOfRangeException(nameof(vmUid), vmUid, $"VM uids are {_options.FirstVmUid}-{_options.LastVmUid}");
    }
}
