using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Lifecycle;
using Bough.Engine.Network;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Changes to a sandbox's deadline and egress policy. Each runs under the sandbox's lifecycle
/// lease, so it cannot interleave with a pause, resume, delete or an expiry (which re-checks the
/// deadline under the same lease): a timeout extended in time always wins over the old deadline.
/// </summary>
internal sealed class SandboxPolicyService(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, Deadlines deadlines, ILogger<SandboxPolicyService> log,
    IEgressFirewall firewall) : ISandboxPolicies
{
    public async Task<Sandbox> SetTimeoutAsync(string id, SetTimeoutRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Seconds is not { } seconds) throw BoughException.Invalid("field 'seconds' is required");
        var timeout = Lifetime.Seconds(seconds, options, "seconds");
        Lifetime.ParseAction(request.OnTimeout, TimeoutAction.Kill);
        if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);

        await using var lease = await registry.AcquireAsync(id, SandboxOperation.Timeout, options.BusyWait, ct);
        if (registry.Get(id) is not { } rt || rt.Stopping || rt.Record.State != SandboxState.Running)
        {
            var row = await store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
            throw BoughException.NotRunning(row.State == SandboxState.Paused
                ? $"sandbox {id} is paused and has no deadline; resume it with {{\"timeoutSeconds\": {seconds}}}"
                : $"sandbox {id} is {row.State.ToName()}; only a running sandbox's timeout can be set");
        }
        var record = await rt.UpdateAsync(store, r => r with
        {
            EndAt = deadlines.Now + timeout,
            OnTimeout = Lifetime.ParseAction(request.OnTimeout, r.OnTimeout),
        });
        deadlines.Changed();
        log.LogInformation("sandbox {Id} now ends at {EndAt} ({Action})", id, record.EndAt, Lifetime.ToName(record.OnTimeout));
        return ContractMapping.ToContract(record);
    }

    public async Task<Sandbox> UpdateNetworkAsync(string id, UpdateNetworkRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Validated up front (each list alone), so a bad entry changes nothing.
        EgressValidation.Validate(request.AllowOut, null, "network");
        EgressValidation.Validate(null, request.DenyOut, "network");
        if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);

        await using var lease = await registry.AcquireAsync(id, SandboxOperation.Network, options.BusyWait, ct);
        if (registry.Get(id) is { } rt && !rt.Stopping && rt.Record.State == SandboxState.Running)
            return ContractMapping.ToContract(await UpdateRunningAsync(rt, request, ct));

        var row = await store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
        if (row.State != SandboxState.Paused)
            throw BoughException.NotRunning($"sandbox {id} is {row.State.ToName()}; only a running or paused sandbox's network can be changed");
        // No VM: the row is all there is, and the resume applies it.
        var paused = Apply(row, request);
        await store.UpdateAsync(paused, CancellationToken.None);
        return ContractMapping.ToContract(paused);
    }

    /// <summary>Persists first, then the firewall; if the firewall refuses, the old policy is put back (row and rules).</summary>
    private async Task<SandboxRecord> UpdateRunningAsync(SandboxRuntime rt, UpdateNetworkRequest request, CancellationToken ct)
    {
        var before = rt.Record;
        var after = await rt.UpdateAsync(store, r => Apply(r, request));
        if (after.VmUid is not { } uid) return after;
        try
        {
            await firewall.ApplyAsync(rt.Id, uid, new EgressPolicy(after.Internet, after.Network), ct);
            log.LogInformation("sandbox {Id}: egress policy changed (internet {Internet})", rt.Id, after.Internet);
            return after;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            log.LogWarning(ex, "sandbox {Id}: the firewall refused the new egress policy; restoring the old one", rt.Id);
            await rt.UpdateAsync(store, r => r with { Internet = before.Internet, Network = before.Network });
            try { await firewall.ApplyAsync(rt.Id, uid, new EgressPolicy(before.Internet, before.Network), CancellationToken.None); }
            catch (Exception again) when (again is not OutOfMemoryException)
            {
                log.LogError(again, "sandbox {Id}: restoring the old egress policy failed too", rt.Id);
            }
            if (ex is OperationCanceledException) throw;
            throw new BoughException(ErrorCodes.Internal, $"applying the egress policy of sandbox {rt.Id} failed: {ex.Message}", ex);
        }
    }

    private static SandboxRecord Apply(SandboxRecord r, UpdateNetworkRequest request)
    {
        var rules = EgressValidation.Validate(
            request.AllowOut ?? r.Network?.AllowOut, request.DenyOut ?? r.Network?.DenyOut, "network");
        return r with { Internet = request.Internet ?? r.Internet, Network = rules };
    }
}
