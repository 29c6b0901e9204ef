namespace Bough.Agent.Operations;

/// <summary>
/// Lexical normalisation of the absolute paths the host sends, done before any check looks at
/// them: <c>/.</c>, <c>//</c> and <c>/a/..</c> all name the root, and a check on the raw text
/// ("is it '/'?") would let them through. The host normalises too; the agent does not rely on it.
/// </summary>
/// <remarks>
/// <c>..</c> is resolved in the text, not through symlinks (as Go's <c>path.Clean</c>): the result
/// never climbs above <c>/</c>. A trailing slash (or <c>/.</c>) is kept as one trailing slash,
/// because it asks for a directory.
/// </remarks>
internal static class GuestPath
{
    /// <summary>The normal form of an absolute path; the caller has checked it is absolute.</summary>
    public static string Normalize(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".") continue;
            if (part == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        if (parts.Count == 0) return "/";
        var normal = "/" + string.Join('/', parts);
        return EndsAsDirectory(path) ? normal + "/" : normal;
    }

    /// <summary>True when the normalised path is the root.</summary>
    public static bool IsRoot(string normalized) => normalized == "/";

    private static bool EndsAsDirectory(string path) =>
        path.EndsWith('/') || path.EndsWith("/.", StringComparison.Ordinal) || path.EndsWith("/..", StringComparison.Ordinal);
}
