namespace Bough.Engine.Sandboxes;

/// <summary>
/// Lexical normalisation of guest paths, applied before any check looks at one: <c>/.</c>,
/// <c>//</c> and <c>/a/..</c> all name the guest's root, and a check on the raw text ("is it
/// '/'?") would let them through to a recursive delete. The agent normalises again on its side.
/// </summary>
/// <remarks>
/// <c>..</c> is resolved in the text, not through the guest's symlinks (as Go's <c>path.Clean</c>
/// does), and never climbs above <c>/</c>. A trailing slash (or <c>/.</c>, <c>/..</c>) is kept as
/// one trailing slash, because it asks for a directory (a write to it stays is_a_directory).
/// </remarks>
internal static class GuestPaths
{
    public const string Root = "/";

    /// <summary>The normal form of <paramref name="path"/>, which must be absolute.</summary>
    public static string Normalize(string path)
    {
        if (path.Length == 0 || path[0] != '/') throw new ArgumentException("an absolute path is required", nameof(path));
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
        if (parts.Count == 0) return Root;
        var normal = "/" + string.Join('/', parts);
        return path.EndsWith('/') || path.EndsWith("/.", StringComparison.Ordinal) || path.EndsWith("/..", StringComparison.Ordinal)
            ? normal + "/" : normal;
    }
}
