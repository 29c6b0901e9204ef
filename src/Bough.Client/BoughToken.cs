namespace Bough.Client;

/// <summary>
/// The API token a client sends, and where it came from (so a refusal can say what to fix).
/// <see cref="Find"/> looks where the CLI does: <c>$BOUGH_TOKEN</c>, else the daemon's token
/// file <c>&lt;data dir&gt;/api-token</c>, with the data directory chosen by the daemon's own
/// rule (explicit, else <c>$BOUGH_HOME</c>, else <c>/var/lib/bough</c> as root, else
/// <c>$XDG_DATA_HOME/bough</c> or <c>~/.local/share/bough</c>).
/// </summary>
/// <param name="Value">The token, or null when none was found.</param>
/// <param name="Source">Where it came from, or where it was looked for and why it was not there.</param>
public sealed record BoughToken(string? Value, string Source)
{
    /// <summary>Environment variable holding the token; wins over the file.</summary>
    public const string Variable = "BOUGH_TOKEN";

    /// <summary>The daemon's token file name inside its data directory.</summary>
    public const string FileName = "api-token";

    /// <summary>Environment variable that moves the data directory (as for the daemon).</summary>
    public const string HomeVariable = "BOUGH_HOME";

    /// <summary>A token given explicitly by the caller.</summary>
    public static BoughToken Of(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        return new BoughToken(value.Trim(), "the token given to the client");
    }

    /// <summary>Finds the token: <c>$BOUGH_TOKEN</c>, else <c>api-token</c> in <paramref name="dataDir"/> (or the default data directory).</summary>
    public static BoughToken Find(string? dataDir = null) => Find(dataDir, Environment.GetEnvironmentVariable, Environment.IsPrivilegedProcess);

    /// <summary>The same search with the environment and identity injected, so it can be tested.</summary>
    public static BoughToken Find(string? dataDir, Func<string, string?> getEnv, bool isRoot)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        if (getEnv(Variable) is { } fromEnv && !string.IsNullOrWhiteSpace(fromEnv))
            return new BoughToken(fromEnv.Trim(), $"${Variable}");

        var file = Path.Combine(ResolveDataDir(dataDir, getEnv, isRoot), FileName);
        try
        {
            var value = File.ReadAllText(file).Trim();
            return value.Length > 0 ? new BoughToken(value, file) : new BoughToken(null, $"{file} is empty");
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new BoughToken(null, $"${Variable} is not set and {file} does not exist");
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            return new BoughToken(null, $"${Variable} is not set and {file} is not readable by this user");
        }
    }

    /// <summary>
    /// The daemon's data directory rule (Bough.HostSetup.DataDirectory.Resolve), repeated here
    /// because a client library must not depend on the host-setup code; a test holds the two
    /// to the same answers.
    /// </summary>
    public static string ResolveDataDir(string? explicitDir, Func<string, string?> getEnv, bool isRoot)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        if (!string.IsNullOrWhiteSpace(explicitDir))
            return Path.GetFullPath(ExpandHome(explicitDir, getEnv));
        if (getEnv(HomeVariable) is { } home && !string.IsNullOrWhiteSpace(home))
            return Path.GetFullPath(ExpandHome(home, getEnv));
        if (isRoot)
            return "/var/lib/bough";
        if (getEnv("XDG_DATA_HOME") is { } xdg && !string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
            return Path.GetFullPath(Path.Combine(xdg, "bough"));
        return Path.GetFullPath(Path.Combine(Home(getEnv), ".local", "share", "bough"));
    }

    private static string Home(Func<string, string?> getEnv) =>
        getEnv("HOME") is { } home && !string.IsNullOrWhiteSpace(home)
            ? home
            : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string ExpandHome(string path, Func<string, string?> getEnv) =>
        path == "~" ? Home(getEnv)
        : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(Home(getEnv), path[2..])
        : path;

    /// <summary>Never prints the secret itself.</summary>
    public override string ToString() => Value is null ? $"no token ({Source})" : $"token from {Source}";
}
