using Bough.HostSetup;

namespace Bough.Images.Tests;

public class DataDirectoryTests
{
    private static Func<string, string?> Env(params (string, string)[] vars) =>
        name => vars.FirstOrDefault(v => v.Item1 == name).Item2;

    [Fact]
    public void Explicit_dir_wins_over_everything()
    {
        var d = DataDirectory.Resolve("/srv/bough/../bough2", Env(("BOUGH_HOME", "/env"), ("HOME", "/home/u")), isRoot: true);
        Assert.Equal("/srv/bough2", d);
    }

    [Fact]
    public void Env_var_wins_over_defaults()
    {
        Assert.Equal("/env/x", DataDirectory.Resolve(null, Env(("BOUGH_HOME", "/env/x")), isRoot: true));
        Assert.Equal("/env/x", DataDirectory.Resolve("  ", Env(("BOUGH_HOME", "/env/x")), isRoot: false));
    }

    [Fact]
    public void Root_uses_var_lib()
    {
        Assert.Equal("/var/lib/bough", DataDirectory.Resolve(null, Env(("HOME", "/root")), isRoot: true));
    }

    [Fact]
    public void Non_root_uses_local_share_under_home()
    {
        Assert.Equal("/home/u/.local/share/bough", DataDirectory.Resolve(null, Env(("HOME", "/home/u")), isRoot: false));
        Assert.Equal("/xdg/bough", DataDirectory.Resolve(null, Env(("HOME", "/home/u"), ("XDG_DATA_HOME", "/xdg")), isRoot: false));
    }

    [Fact]
    public void Tilde_is_expanded()
    {
        Assert.Equal("/home/u/b", DataDirectory.Resolve("~/b", Env(("HOME", "/home/u")), isRoot: false));
    }

    [Fact]
    public void Real_resolve_honours_explicit_dir()
    {
        Assert.Equal("/tmp/bough-x", DataDirectory.Resolve("/tmp/bough-x"));
    }
}
