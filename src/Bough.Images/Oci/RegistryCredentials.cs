using System.Text;
using System.Text.Json;

namespace Bough.Images.Oci;

/// <summary>A user name and password for one registry, and the token services on other hosts that may receive them.</summary>
internal sealed record RegistryCredential(string Username, string Password)
{
    /// <summary>Hosts (<c>host[:port]</c> or an https URL) of token services trusted with these credentials besides the registry's own.</summary>
    public IReadOnlyList<string> TokenRealms { get; init; } = [];

    public override string ToString() => $"user '{Username}'"; // never the password
}

/// <summary>
/// Reads Docker's <c>config.json</c> shape: <c>{"auths": {"host:port": {"auth": base64(user:pass)}}}</c> or
/// with <c>username</c>/<c>password</c> fields. Keys may be bare hosts or URLs (<c>https://host/v1/</c>), as
/// <c>docker login</c> writes them; Docker Hub is looked up under all of its historical names. Bough's own
/// addition, which Docker ignores: <c>"tokenRealms": ["auth.example.com"]</c> in an entry (see <see cref="CredentialPolicy"/>).
/// </summary>
internal static class RegistryCredentials
{
    public static RegistryCredential? Find(string? file, string registry)
    {
        if (file is null || !File.Exists(file)) return null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(file));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new ImageException("registry_unauthorized", $"credentials file {file} could not be read: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("auths", out var auths) || auths.ValueKind != JsonValueKind.Object)
                return null;
            var names = CandidateKeys(registry);
            foreach (var entry in auths.EnumerateObject())
            {
                if (!names.Contains(NormaliseKey(entry.Name))) continue;
                return Decode(entry.Value, file, entry.Name);
            }
            return null;
        }
    }

    private static HashSet<string> CandidateKeys(string registry) =>
        registry == "docker.io"
            ? ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]
            : [registry.ToLowerInvariant()];

    /// <summary><c>https://host:port/v1/</c> → <c>host:port</c>.</summary>
    private static string NormaliseKey(string key)
    {
        var k = key.Trim().ToLowerInvariant();
        var scheme = k.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) k = k[(scheme + 3)..];
        var slash = k.IndexOf('/');
        return slash >= 0 ? k[..slash] : k;
    }

    private static RegistryCredential? Decode(JsonElement e, string file, string key) =>
        DecodeUser(e, file, key) is { } c ? c with { TokenRealms = Realms(e) } : null;

    private static List<string> Realms(JsonElement e) =>
        e.TryGetProperty("tokenRealms", out var r) && r.ValueKind == JsonValueKind.Array
            ? r.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!.Trim()).Where(x => x.Length > 0).ToList()
            : [];

    private static RegistryCredential? DecodeUser(JsonElement e, string file, string key)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        if (e.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } b64)
        {
            string text;
            try { text = Encoding.UTF8.GetString(Convert.FromBase64String(b64)); }
            catch (FormatException ex)
            {
                throw new ImageException("registry_unauthorized", $"credentials file {file}: 'auth' of '{key}' is not base64", ex);
            }
            var colon = text.IndexOf(':');
            if (colon <= 0)
                throw new ImageException("registry_unauthorized", $"credentials file {file}: 'auth' of '{key}' is not base64(user:password)");
            return new RegistryCredential(text[..colon], text[(colon + 1)..]);
        }
        if (e.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String
            && e.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String)
            return new RegistryCredential(u.GetString()!, p.GetString()!);
        return null;
    }
}
