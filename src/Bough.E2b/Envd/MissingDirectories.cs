using Bough.Engine;

namespace Bough.E2b.Envd;

/// <summary>
/// The directories a mkdir -p of a path is about to create. The guest's agent creates directories
/// as root; envd creates them as the calling user, so the adapter finds them first and gives them
/// to that user afterwards (MakeDir, and the parents a /files upload creates).
/// </summary>
internal static class MissingDirectories
{
    /// <summary><paramref name="path"/> and its ancestors that do not exist yet, deepest first (none when it exists).</summary>
    public static async Task<List<string>> FindAsync(IGuestProcesses guest, string id, string path, CancellationToken ct)
    {
        var missing = new List<string>();
        for (var p = path.TrimEnd('/'); p.Length > 1 && !await guest.ExistsAsync(id, p, ct); p = Parent(p))
            missing.Add(p);
        return missing;
    }

    public static string Parent(string path)
    {
        var slash = path.TrimEnd('/').LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }
}
