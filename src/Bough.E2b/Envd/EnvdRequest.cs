using System.Text;
using Bough.Contracts;
using Microsoft.AspNetCore.Http;

namespace Bough.E2b.Envd;

/// <summary>
/// An envd request bound to its sandbox: the sandbox as the engine last reported it and the user
/// the request acts as (Basic auth <c>user:</c> for RPC, <c>username=</c> for /files; else the
/// sandbox's default: <c>user</c> in the E2B base template, the image's own user elsewhere).
/// </summary>
internal sealed record EnvdRequest(HttpContext Http, Sandbox Sandbox, string? User)
{
    public string Id => Sandbox.Id;

    /// <summary>Relative paths resolve against the user's home, as in envd.</summary>
    public string Home => User switch
    {
        null or "root" or "0" => "/root",
        _ => $"/home/{User}",
    };

    /// <summary>An absolute guest path for <paramref name="path"/>; '~' and relative paths start at <see cref="Home"/>.</summary>
    public string Resolve(string? path)
    {
        if (string.IsNullOrEmpty(path))
            throw E2bException.Invalid("a path is required");
        if (path == "~")
            return Home;
        if (path.StartsWith("~/", StringComparison.Ordinal))
            return Home + path[1..];
        return path[0] == '/' ? path : $"{Home}/{path}";
    }

    public static EnvdRequest Create(HttpContext http, Sandbox sandbox)
    {
        var user = FromBasicAuth(http.Request) ?? NonEmpty(http.Request.Query["username"].ToString());
        if (user is null && sandbox.Image == E2bNames.BaseImageName)
            user = E2bNames.BaseUser;
        return new EnvdRequest(http, sandbox, user);
    }

    /// <summary><c>Authorization: Basic base64("name:")</c>, as the SDK sends when a call names a user.</summary>
    private static string? FromBasicAuth(HttpRequest request)
    {
        var value = request.Headers.Authorization.ToString();
        if (!value.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
            return null;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(value[6..].Trim()));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return NonEmpty(colon >= 0 ? decoded[..colon] : decoded);
        }
        catch (FormatException)
        {
            throw new E2bException(400, "the Authorization header is not valid Basic credentials");
        }
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
