using Bough.HostSetup;
using Bough.Images.Rootfs;

namespace Bough.Images.Tests.Umask;

/// <summary>
/// External tools that lay out files for others (debootstrap and dpkg in a guest tree, apt on the host) run under
/// umask 022 whatever the daemon's (077): the wrapper is checked with the real shell reporting its own umask.
/// </summary>
[Collection(UmaskIsolation.Collection)]
public sealed class ChildUmaskTests
{
    [Fact]
    public void The_process_umask_is_set_read_back_and_restored()
    {
        using (new UmaskScope(ProcessUmask.Daemon))
        {
            Assert.Equal(ProcessUmask.Daemon, ProcessUmask.Current);
            var before = ProcessUmask.Set(ProcessUmask.Shared);
            Assert.Equal(ProcessUmask.Daemon, before);
            Assert.Equal(ProcessUmask.Shared, ProcessUmask.Current);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => ProcessUmask.Set(UnixFileMode.SetUser));
        Assert.Equal("0077", ProcessUmask.ToOctal(ProcessUmask.Daemon));
        Assert.Equal(ProcessUmask.Shared, ProcessUmask.Parse("0022"));
        Assert.Throws<FormatException>(() => ProcessUmask.Parse("0080"));
    }

    [Fact]
    public async Task A_command_runs_under_the_umask_it_asks_for_and_otherwise_inherits_the_daemon_s()
    {
        using var _ = new UmaskScope(ProcessUmask.Daemon);
        var shared = await CommandRunner.RunCheckedAsync("sh", ["-c", "umask"], new CommandOptions { Umask = ProcessUmask.Shared });
        Assert.Equal("0022", shared.Stdout.Trim());
        var inherited = await CommandRunner.RunCheckedAsync("sh", ["-c", "umask"]);
        Assert.Equal("0077", inherited.Stdout.Trim());

        // The tool gets its arguments as words, untouched by the wrapping shell.
        string[] words = ["a b", "'q'", "$HOME", "*", "-c", ""];
        var echoed = await CommandRunner.RunCheckedAsync("printf", ["%s|", .. words], new CommandOptions { Umask = ProcessUmask.Shared });
        Assert.Equal(string.Concat(words.Select(w => w + "|")), echoed.Stdout);
        Assert.Equal("printf", echoed.FileName); // errors quote the tool, not the wrapper

        var exit = await CommandRunner.RunAsync("sh", ["-c", "exit 7"], new CommandOptions { Umask = ProcessUmask.Shared });
        Assert.Equal(7, exit.ExitCode);
        await Assert.ThrowsAsync<SetupException>(() =>
            CommandRunner.RunAsync("no-such-tool-bough", [], new CommandOptions { Umask = ProcessUmask.Shared }));
    }

    [Fact]
    public async Task A_file_made_by_a_wrapped_tool_under_the_daemon_s_umask_is_readable_by_all()
    {
        using var tmp = new TempDir();
        var file = Path.Combine(tmp.Path, "made");
        using var _ = new UmaskScope(ProcessUmask.Daemon);
        await CommandRunner.RunCheckedAsync("touch", [file], new CommandOptions { Umask = ProcessUmask.Shared });
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task The_streaming_runner_that_runs_debootstrap_applies_the_umask_too()
    {
        using var _ = new UmaskScope(ProcessUmask.Daemon);
        var lines = new List<string>();
        var result = await StreamingCommand.RunAsync("sh", ["-c", "umask; echo done"], l => { lock (lines) lines.Add(l); }, ProcessUmask.Shared,
            CancellationToken.None);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("0022", lines);
        var inherited = new List<string>();
        await StreamingCommand.RunAsync("sh", ["-c", "umask"], l => { lock (inherited) inherited.Add(l); }, null, CancellationToken.None);
        Assert.Equal(["0077"], inherited);
    }
}
