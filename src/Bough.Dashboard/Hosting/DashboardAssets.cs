using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Net.Http.Headers;

namespace Bough.Dashboard.Hosting;

/// <summary>
/// Serves the files embedded in this assembly under <c>assets/</c> (styles, scripts, the terminal emulator,
/// Blazor's script) at <c>/ui/_assets/…</c>, with an ETag so a browser revalidates instead of downloading again.
/// Embedding keeps the daemon one build output with nothing to fetch or find on disk at run time.
/// </summary>
internal static class DashboardAssets
{
    private static readonly Assembly Source = typeof(DashboardAssets).Assembly;
    private static readonly FileExtensionContentTypeProvider Types = new();
    private const string Prefix = "assets/";

    // Every embedded asset, read once: a fixed set, so an unauthenticated client asking for made-up paths costs nothing.
    private static readonly Lazy<FrozenDictionary<string, (byte[] Body, string ETag)>> All = new(LoadAll);

    public static IResult Serve(string path, HttpContext ctx)
    {
        if (!All.Value.TryGetValue(path, out var a))
            return Results.NotFound();
        var headers = ctx.Response.GetTypedHeaders();
        headers.ETag = new EntityTagHeaderValue(a.ETag);
        headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
        var ifNoneMatch = ctx.Request.Headers.IfNoneMatch;
        if (ifNoneMatch.Count > 0 && string.Equals(ifNoneMatch[0], a.ETag, StringComparison.Ordinal))
            return Results.StatusCode(StatusCodes.Status304NotModified);
        var type = Types.TryGetContentType(path, out var t) ? t : "application/octet-stream";
        return Results.Bytes(a.Body, type);
    }

    private static FrozenDictionary<string, (byte[] Body, string ETag)> LoadAll()
    {
        var all = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var name in Source.GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
                continue;
            using var stream = Source.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var body = copy.ToArray();
            all[name[Prefix.Length..]] = (body, "\"" + Convert.ToHexStringLower(SHA256.HashData(body))[..16] + "\"");
        }
        return all.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
