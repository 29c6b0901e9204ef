using Bough.Contracts;

namespace Bough.Client;

/// <summary>A sandbox's lifetime and egress policy.</summary>
public sealed partial class BoughClient
{
    /// <summary>Sets a running sandbox's deadline to <see cref="SetTimeoutRequest.Seconds"/> from now (and optionally what it does).</summary>
    public Task<Sandbox> SetTimeoutAsync(string id, SetTimeoutRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Sandbox>(HttpMethod.Post, SandboxPath(id) + "/timeout", request, ct);
    }

    /// <summary>Changes a running or paused sandbox's egress policy; fields left out keep their value.</summary>
    public Task<Sandbox> UpdateNetworkAsync(string id, UpdateNetworkRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Sandbox>(HttpMethod.Put, SandboxPath(id) + "/network", request, ct);
    }

    /// <summary>Continues a paused sandbox with a new deadline (<see cref="ResumeRequest.TimeoutSeconds"/>).</summary>
    public Task<Sandbox> ResumeAsync(string id, ResumeRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Sandbox>(HttpMethod.Post, SandboxPath(id) + "/resume", request, ct);
    }
}
