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
