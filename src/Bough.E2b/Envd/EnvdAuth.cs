using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Bough.Contracts;
using Bough.E2b.ControlPlane;
using Microsoft.AspNetCore.Http;

namespace Bough.E2b.Envd;

/// <summary>
/// Who may use a sandbox's envd surface: the holder of its access token (<c>X-Access-Token</c>,
/// made at create and kept in the sandbox's reserved metadata). <c>/files</c> also takes envd's
/// signed URLs (<c>signature=v1_...</c>, what the SDK's <c>uploadUrl</c>/<c>downloadUrl</c> make
/// from the same token). <c>/health</c> needs nothing, as in envd: it only says whether the
/// sandbox runs. Comparisons are constant-time over SHA-256 digests.
/// </summary>
internal static class EnvdAuth
{
    public static bool IsAllowed(HttpRequest request, Sandbox sandbox, string? user, TimeProvider clock)
    {
        var token = SandboxViews.AccessToken(sandbox);
        if (token is null)
            return false;
        if (request.Path.Equals("/health", StringComparison.Ordinal))
            return true;
        var presented = request.Headers[E2bNames.AccessTokenHeader];
        if (presented.Count == 1 && SameSecret(presented[0] ?? "", token))
            return true;
        return request.Path.Equals("/files", StringComparison.Ordinal) && SignatureValid(request, token, user, clock);
    }

    /// <summary>envd's v1 signature: base64(sha256("path:operation:user:token[:expiration]")) without padding.</summary>
    private static bool SignatureValid(HttpRequest request, string token, string? user, TimeProvider clock)
    {
        var signature = request.Query["signature"].ToString();
        if (!signature.StartsWith("v1_", StringComparison.Ordinal))
            return false;
        var path = request.Query["path"].ToString();
        var operation = HttpMethods.IsGet(request.Method) ? "read" : "write";
        var expiration = request.Query["signature_expiration"].ToString();
        var raw = $"{path}:{operation}:{user ?? ""}:{token}";
        if (!string.IsNullOrEmpty(expiration))
        {
            if (!long.TryParse(expiration, NumberStyles.None, CultureInfo.InvariantCulture, out var unix)
                || clock.GetUtcNow().ToUnixTimeSeconds() > unix)
                return false;
            raw += ":" + expiration;
        }
        var expected = "v1_" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(raw))).TrimEnd('=');
        return SameSecret(signature, expected);
    }

    private static bool SameSecret(string presented, string expected) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}
