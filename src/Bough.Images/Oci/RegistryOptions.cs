namespace Bough.Images.Oci;

/// <summary>Settings for registry access.</summary>
public sealed record RegistryOptions
{
    /// <summary>
    /// Docker-style credentials file (<c>{"auths": {"host": {"auth": base64(user:pass)} or {"username","password"}}}</c>).
    /// Default: <c>&lt;data&gt;/registries.json</c> if present. An entry may add <c>"tokenRealms": ["auth.example.com"]</c>:
    /// token services on other hosts that may receive its credentials (see <see cref="CredentialPolicy"/>).
    /// </summary>
    public string? CredentialsFile { get; init; }
    /// <summary>Concurrent layer downloads.</summary>
    public int MaxConcurrentDownloads { get; init; } = 3;
    /// <summary>Limit for one request up to its response headers (a blob body may stream longer).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// A blob download that receives no byte for this long fails (registry_unavailable) instead of
    /// hanging: <see cref="RequestTimeout"/> ends at the response headers, a body may stream for hours.
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Caps on documents, configs and layer sizes (<see cref="ImageLimits"/>).</summary>
    public ImageLimits Limits { get; init; } = new();
    /// <summary>How often download progress is reported at most (state changes are always reported).</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(100);
}
