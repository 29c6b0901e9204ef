namespace Bough.Images.Oci;

/// <summary>
/// Where registry credentials from <c>registries.json</c> may go. A registry is named by whoever asks for
/// a pull and its answers are not trusted, so a challenge must never be able to carry the credentials
/// somewhere else or over the wire in clear:
/// <list type="bullet">
/// <item>Credentials (Basic to the registry, or Basic to its token service) go only over HTTPS whose
/// certificate was verified, i.e. never on an <c>insecure</c> pull (plain HTTP or unverified TLS).</item>
/// <item>Only to the registry's own host and port, or to a token service whose host is listed for that
/// registry in <c>registries.json</c> (<c>"tokenRealms": ["auth.example.com"]</c>), or Docker Hub's own
/// token service (<c>auth.docker.io</c>) for <c>docker.io</c>.</item>
/// <item>A token service on plain HTTP is refused on a secure pull (a downgrade); on an insecure pull it
/// is asked anonymously.</item>
/// <item>Without credentials to protect, a token service on another HTTPS host is asked anonymously, as
/// Docker does for public images (registries such as nvcr.io or registry.gitlab.com keep their token
/// service elsewhere).</item>
/// </list>
/// Redirects (blob downloads commonly go to object storage) never carry the Authorization header:
/// .NET's redirect handling drops it, and refuses HTTPS → HTTP redirects.
/// </summary>
internal sealed class CredentialPolicy(ImageReference reference, bool insecure, RegistryCredential? credential)
{
    private static readonly Dictionary<string, string[]> BuiltInRealms = new(StringComparer.Ordinal)
    {
        ["docker.io"] = ["auth.docker.io"],
    };

    /// <summary>The credentials <c>registries.json</c> has for this registry, if any.</summary>
    public RegistryCredential? Credential => credential;

    /// <summary>May Basic credentials be sent to the registry at <paramref name="url"/>?</summary>
    public bool MaySendToRegistry(Uri url) =>
        credential is not null && !insecure && url.Scheme == Uri.UriSchemeHttps && SameAuthority(url, RegistryAuthority);

    /// <summary>
    /// How to ask the token service at <paramref name="realm"/>: true to send the credentials, false to
    /// ask anonymously; an <see cref="ImageException"/> (registry_unauthorized) when it may not be asked.
    /// </summary>
    public bool SendCredentialsToRealm(Uri realm, string credentialsFile)
    {
        if (realm.Scheme != Uri.UriSchemeHttps && realm.Scheme != Uri.UriSchemeHttp)
            throw new ImageException("registry_unavailable", $"registry {reference.Registry} named a token service that is not HTTP(S): {Display(realm)}");
        if (realm.Scheme == Uri.UriSchemeHttp)
        {
            if (!insecure)
                throw new ImageException("registry_unauthorized",
                    $"registry {reference.Registry} sends clients to the token service {Display(realm)} over plain HTTP; " +
                    "tokens are fetched only over HTTPS (a plain-HTTP lab registry without credentials can be pulled with insecure: true)");
            return false;
        }
        if (credential is null || insecure) return false;
        if (TrustedRealm(realm)) return true;
        throw new ImageException("registry_unauthorized",
            $"registry {reference.Registry} sends clients to the token service {Display(realm)} on another host; " +
            $"credentials for {credential} are sent only to the registry's own host or to a token service listed for it in {credentialsFile} " +
            $"(add \"tokenRealms\": [\"{realm.Authority}\"] to its entry if that service is trusted)");
    }

    private string RegistryAuthority => "https://" + reference.ApiHost;

    private bool TrustedRealm(Uri realm)
    {
        if (SameAuthority(realm, RegistryAuthority)) return true;
        var listed = credential!.TokenRealms.Concat(BuiltInRealms.GetValueOrDefault(reference.Registry) ?? []);
        return listed.Any(entry => SameAuthority(realm, entry.Contains("://", StringComparison.Ordinal) ? entry : "https://" + entry));
    }

    /// <summary>Same host and port (a default port counts as given); an unparsable entry matches nothing.</summary>
    private static bool SameAuthority(Uri url, string other) =>
        Uri.TryCreate(other, UriKind.Absolute, out var o) && o.Scheme == Uri.UriSchemeHttps
        && string.Equals(url.IdnHost, o.IdnHost, StringComparison.OrdinalIgnoreCase) && url.Port == o.Port;

    /// <summary>The realm without its query (which names scopes, never secrets, but is noise in a message).</summary>
    private static string Display(Uri realm) => realm.GetLeftPart(UriPartial.Path);
}
