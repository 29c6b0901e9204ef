using Bough.Client;
using Bough.HostSetup;

namespace Bough.Integration.Tests;

/// <summary>
/// The client library repeats the daemon's data directory rule (it must not depend on host
/// setup); these hold the two copies to the same answers, and check where the token comes from.
/// No daemon.
/// </summary>
public sealed class TokenDiscoveryTests
{
    public static TheoryData<string?, string?, string?, string?, bool> Cases => new()
    {
        { "/srv/b/../bough2", "/env", "/home/u", null, true },
        { null, "/env/x", "/home/u", null, false },
        { "  ", "/env/x", "/home/u", null, true },
        { null, null, "/root", null, true },
        { null, null, "/home/u", null, false },
        { null, null, "/home/u", "/xdg", false },
        { null, null, "/home/u", "relative", false },
        { "~/b", null, "/home/u", null, false },
        { null, "~", "/home/u", null, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_client_resolves_the_data_dir_as_the_daemon_does(string? explicitDir, string? home, string? userHome, string? xdg, bool root)
    {
        var env = new Dictionary<string, string?> { ["BOUGH_HOME"] = home, ["HOME"] = userHome, ["XDG_DATA_HOME"] = xdg };
        string? Get(string name) => env.GetValueOrDefault(name);
        Assert.Equal(DataDirectory.Resolve(explicitDir, Get, root), BoughToken.ResolveDataDir(explicitDir, Get, root));
    }

    [Fact]
    public void The_environment_wins_then_the_data_dirs_file()
    {
        using var dir = new TempDir("token");
        File.WriteAllText(dir.Combine("api-token"), "from-the-file-0123456789\n");
        var env = new Dictionary<string, string?> { ["BOUGH_HOME"] = dir.Path };

        var fromFile = BoughToken.Find(null, n => env.GetValueOrDefault(n), isRoot: true);
        Assert.Equal("from-the-file-0123456789", fromFile.Value);
        Assert.Equal(dir.Combine("api-token"), fromFile.Source);

        env["BOUGH_TOKEN"] = " from-the-env ";
        var fromEnv = BoughToken.Find(null, n => env.GetValueOrDefault(n), isRoot: true);
        Assert.Equal("from-the-env", fromEnv.Value);
        Assert.DoesNotContain("from-the-env", fromEnv.ToString()); // never printed

        env.Remove("BOUGH_TOKEN");
        var none = BoughToken.Find(dir.Combine("elsewhere"), n => env.GetValueOrDefault(n), isRoot: true);
        Assert.Null(none.Value);
        Assert.Contains("does not exist", none.Source);
    }
}
