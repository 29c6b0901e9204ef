namespace Bough.Images.Oci;

/// <summary>
/// The one host directory image imports may read from (<c>&lt;data dir&gt;/import</c> unless configured).
/// An import names a path on the daemon's host, and the daemon reads as root: without this, whoever
/// may call the API could make it read any host file. A path counts as inside only by its real path
/// (symbolic links and <c>..</c> resolved), so a link planted inside that leads out does not count, and
/// the answer for a path outside never says whether it exists.
/// </summary>
public sealed class ImportDirectory(string path)
{
    /// <summary>The directory as configured (absolute).</summary>
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    /// <summary>The default for a data directory: <c>&lt;data dir&gt;/import</c>.</summary>
    public static ImportDirectory ForDataDir(string dataDir) => new(System.IO.Path.Combine(dataDir, "import"));

    /// <summary>
    /// The real path of <paramref name="requested"/> (absolute) when it lies inside the directory; what the
    /// importer must open. permission_denied when it is (or resolves) outside, invalid_request when
    /// nothing is there.
    /// </summary>
    public string Resolve(string requested)
    {
        ArgumentException.ThrowIfNullOrEmpty(requested);
        var lexical = System.IO.Path.GetFullPath(requested);
        var root = PosixFs.RealPath(Path);
        if (root is null)
            throw new ImageException("permission_denied",
                $"'{requested}' cannot be imported: the import directory {Path} does not exist; create it (mode 0700, owned by the daemon's user) and put archives there");
        var real = PosixFs.RealPath(lexical);
        if (real is null)
        {
            // Say "nothing there" only inside the directory: outside, the answer must not tell whether a host path exists.
            if (!Inside(lexical, Path) && !Inside(lexical, root)) throw Outside(requested);
            throw new ImageException("invalid_request", $"nothing at '{requested}' in the import directory {Path}");
        }
        if (!Inside(real, root)) throw Outside(requested);
        return real;
    }

    private ImageException Outside(string requested) => new("permission_denied",
        $"'{requested}' is outside the import directory {Path} (symbolic links and '..' resolved); the daemon imports only " +
        $"OCI layouts and archives placed there: copy or move it into {Path}");

    private static bool Inside(string candidate, string dir) =>
        candidate.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);
}
