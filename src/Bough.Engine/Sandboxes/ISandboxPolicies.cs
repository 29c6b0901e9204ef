using Bough.Contracts;

namespace Bough.Engine;

/// <summary>A sandbox's lifetime and egress policy, changed while it exists (the HTTP layer's view).</summary>
public interface ISandboxPolicies
{
    /// <summary>
    /// POST /v1/sandboxes/{id}/timeout: the running sandbox's deadline becomes <c>seconds</c> from
    /// now (longer or shorter than before), optionally with a new <c>onTimeout</c>.
    /// </summary>
    Task<Sandbox> SetTimeoutAsync(string id, SetTimeoutRequest request, CancellationToken ct);

    /// <summary>
    /// PUT /v1/sandboxes/{id}/network: changes <c>internet</c>, <c>allowOut</c> and <c>denyOut</c>
    /// (fields left out stay) of a running or paused sandbox; a running one's firewall follows at once.
    /// </summary>
    Task<Sandbox> UpdateNetworkAsync(string id, UpdateNetworkRequest request, CancellationToken ct);
}
