namespace Bough.HostSetup;

/// <summary>
/// Decides where Bough keeps its state (kernel, images, sandboxes, catalog). One rule for the
/// CLI, the daemon and the tests so they always agree on the same directory.
/// </summary>
public static class DataDirectory
{
    /// <summary>Environment variable that overrides the default location.</summary>
    public const string EnvironmentVariable = "BOUGH_HOME";

    /// <summary>Where a root install keeps its state (the FHS place for variable state).</summary>
    public const string SystemDefault = "/var/lib/bough";

    /// <summary>
    /// The data directory's mode: owner only. It holds the catalog (with sandbox env), guest
    /// disks and memory images, console logs and the API token; no other local user may read or
    /// even traverse it.
    /// </summary>
    public const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates <paramref name="dataDir"/> (and missing parents) if needed and makes it
    /// <see cref="PrivateMode"/> (0700), tightening a directory an older Bough left readable.
    /// Only the directory itself changes: with no search permission for anyone else, nothing
    /// under it is reachable by path whatever its own mode, and the links test setups keep in
    /// there (to shared caches) are not followed.
    /// </summary>
    /// <exception cref="IOException">The path exists but is not a directory, or cannot be changed.</exception>
    public static void EnsurePrivate(string dataDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        if (File.Exists(dataDir))
            throw new IOException($"data directory {dataDir} exists but is not a directory");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dataDir);
            return;
        }
        if (!Directory.Exists(dataDir))
        {
            var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(dataDir));
            if (!string.IsNullOrEmpty(parent))
                Directory.CreateDirectory(parent); // parents keep the usual modes (e.g. ~/.local/share)
            Directory.CreateDirectory(dataDir, PrivateMode);
        }
        try
        {
            if (File.GetUnixFileMode(dataDir) != PrivateMode)
                File.SetUnixFileMode(dataDir, PrivateMode);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new IOException($"cannot make the data directory {dataDir} private (mode 0700): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Explicit directory if given, else <c>$BOUGH_HOME</c>, else <c>/var/lib/bough</c> when running
    /// as root, else <c>~/.local/share/bough</c> (XDG data home; <c>$XDG_DATA_HOME/bough</c> when set).
    /// The result is an absolute, normalised path; nothing is created.
    /// </summary>
    public static string Resolve(string? explicitDir) =>
        Resolve(explicitDir, Environment.GetEnvironmentVariable, HostIdentity.IsRoot());

    /// <summary>The same rule with the environment and identity injected, so it can be tested.</summary>
    public static string Resolve(string? explicitDir, Func<string, string?> getEnv, bool isRoot)
    {
        if (!string.IsNullOrWhiteSpace(explicitDir))
            return Path.GetFullPath(ExpandHome(explicitDir, getEnv));

        var fromEnv = getEnv(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
            return Path.GetFullPath(ExpandHome(fromEnv, getEnv));

        if (isRoot)
            return SystemDefault;

        var xdg = getEnv("XDG_DATA_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
            return Path.GetFullPath(Path.Combine(xdg, "bough"));

        return Path.GetFullPath(Path.Combine(Home(getEnv), ".local", "share", "bough"));
    }

    private static string Home(Func<string, string?> getEnv)
    {
        var home = getEnv("HOME");
        return string.IsNullOrWhiteSpace(home)
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)
            : home;
    }

    /// <summary>Shells expand <c>~</c> but a value from a config file or quoted argument does not.</summary>
    private static string ExpandHome(string path, Func<string, string?> getEnv) =>
        path == "~" ? Home(getEnv)
        : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(Home(getEnv), path[2..])
        : path;
}
