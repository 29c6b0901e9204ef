namespace Bough.Contracts;

// Wire types of a sandbox's lifetime (deadline) and egress policy.

/// <summary>What <c>onTimeout</c> may say.</summary>
public static class TimeoutActions
{
    public const string Kill = "kill";
    public const string Pause = "pause";
}

/// <summary>
/// Per-sandbox egress rules (IPv4 CIDRs or addresses), E2B-style. With <c>allowOut</c> given,
/// only those destinations are reachable; <c>denyOut</c> destinations never are. Neither can open
/// what no sandbox may reach (the host, private and link-local ranges, other sandboxes).
/// </summary>
public sealed record NetworkRules
{
    public List<string>? AllowOut { get; init; }
    public List<string>? DenyOut { get; init; }
}

/// <summary>PUT /v1/sandboxes/{id}/network: fields left out keep their current value.</summary>
public sealed record UpdateNetworkRequest
{
    public bool? Internet { get; init; }
    public List<string>? AllowOut { get; init; }
    public List<string>? DenyOut { get; init; }
}

/// <summary>POST /v1/sandboxes/{id}/timeout: the lifetime ends <c>seconds</c> from now.</summary>
public sealed record SetTimeoutRequest
{
    public int? Seconds { get; init; }
    /// <summary>"kill" or "pause"; left out: unchanged.</summary>
    public string? OnTimeout { get; init; }
}

/// <summary>POST /v1/sandboxes/{id}/resume (body optional): a resumed sandbox starts a new lifetime.</summary>
public sealed record ResumeRequest
{
    /// <summary>Seconds until the deadline; left out: the daemon's default (none unless configured).</summary>
    public int? TimeoutSeconds { get; init; }
    /// <summary>"kill" or "pause"; left out: what the sandbox had.</summary>
    public string? OnTimeout { get; init; }
}
