using System.Security.Cryptography;
using Bough.Contracts;

namespace Bough.E2b.ControlPlane;

/// <summary>How a Bough sandbox looks to E2B: its reserved metadata, its template id, its state.</summary>
internal static class SandboxViews
{
    /// <summary>A fresh envd access token: 32 random bytes, URL-safe base64 (no padding).</summary>
    public static string NewAccessToken() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Sandboxes made through the E2B surface carry an access token; only they are E2B sandboxes.</summary>
    public static string? AccessToken(Sandbox s) => s.Metadata.GetValueOrDefault(E2bNames.AccessTokenKey);

    public static bool IsE2b(Sandbox s) => AccessToken(s) is not null;

    /// <summary>Running and paused are the two states E2B knows; a sandbox starting or stopping is neither yet.</summary>
    public static string? E2bState(Sandbox s) => s.State switch
    {
        SandboxStates.Running => "running",
        SandboxStates.Paused => "paused",
        _ => null,
    };

    public static string TemplateId(Sandbox s) =>
        s.Metadata.GetValueOrDefault(E2bNames.TemplateIdKey) ?? s.Template ?? s.SnapshotId ?? s.Image;

    /// <summary>The metadata the client gave: reserved keys left out.</summary>
    public static Dictionary<string, string> UserMetadata(IReadOnlyDictionary<string, string> metadata) =>
        metadata.Where(kv => !kv.Key.StartsWith(E2bNames.ReservedPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <param name="s">The sandbox.</param>
    /// <param name="domain">Where its ports are routed (<see cref="ISandboxDomain"/>); null leaves the field out.</param>
    public static E2bSandbox ToSandbox(Sandbox s, string? domain) => new()
    {
        SandboxId = s.Id,
        TemplateId = TemplateId(s),
        EnvdAccessToken = AccessToken(s),
        Domain = domain,
    };

    public static E2bSandboxDetail ToDetail(Sandbox s, bool detail, string? domain = null) => new()
    {
        SandboxId = s.Id,
        TemplateId = TemplateId(s),
        CpuCount = s.Vcpus,
        MemoryMb = s.MemoryMiB,
        Metadata = UserMetadata(s.Metadata),
        StartedAt = s.CreatedAt,
        // E2B always has an end; a Bough sandbox without a deadline (or a paused one) has none.
        EndAt = s.EndAt ?? DateTimeOffset.MaxValue,
        State = E2bState(s) ?? s.State,
        EnvdAccessToken = detail ? AccessToken(s) : null,
        Domain = detail ? domain : null,
        AllowInternetAccess = detail ? s.Internet : null,
        Lifecycle = detail ? new Lifecycle(s.OnTimeout ?? TimeoutActions.Kill, AutoResume: false) : null,
        Network = detail && s.Network is { } n ? new NetworkConfig { AllowOut = n.AllowOut, DenyOut = n.DenyOut } : null,
    };
}
