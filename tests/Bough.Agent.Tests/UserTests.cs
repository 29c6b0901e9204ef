using System.Diagnostics;
using Bough.AgentClient;
using Xunit.Abstractions;

namespace Bough.Agent.Tests;

/// <summary>
/// exec as another user and the configured defaults (Cwd, User). The agent runs as root here (as
/// the tests do); users come from a passwd/group pair in a temp dir (--etc) so the host's own
/// accounts do not matter. Commands are the host's coreutils, checked through what the kernel
/// reports (id, /proc/self/status), not through anything the agent says.
/// </summary>
public sealed class UserTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private AgentProcess _agent = null!;
    private AgentConnection _c = null!;
    private readonly TempDir _etc = new("agent-etc");

    public async Task InitializeAsync()
    {
        File.WriteAllText(_etc.Combine("passwd"), """
            root:x:0:0:root:/root:/bin/sh
            alice:x:1234:1235:Alice:/home/alice:/bin/sh
            # a comment line
            bob:x:1300:1300::/srv/bob:/bin/sh

            """);
        File.WriteAllText(_etc.Combine("group"), """
            root:x:0:
            alice:x:1235:
            devs:x:2000:bob,alice
            ops:x:2001:carol
            bob:x:1300:

            """);
        _agent = await AgentProcess.StartAsync(extraArgs: ["--etc", _etc.Path],
            environment: new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "/agent-only-libs", ["BOUGH_AGENT_ONLY"] = "1" });
        _c = await _agent.ConnectAsync();
    }

    public async Task DisposeAsync()
    {
        await _c.DisposeAsync();
        await _agent.DisposeAsync();
    }

    /// <summary>xunit calls this after <see cref="DisposeAsync"/>, so the agent is gone before its --etc dir.</summary>
    public void Dispose() => _etc.Dispose();

    private async Task<string> Out(ExecSpec spec)
    {
        var (exit, stdout, stderr) = await _c.RunToCompletionAsync(spec, ExecHelpers.Timeout(60));
        Assert.True(exit.ExitCode == 0, $"exit {exit.ExitCode}: {stderr.Text()}");
        return stdout.Text();
    }

    private static ExecSpec Sh(string script, string? user = null, string? cwd = null, Dictionary<string, string>? env = null) =>
        new() { Argv = ["sh", "-c", script], User = user, Cwd = cwd, Env = env };

    [Fact]
    public async Task Numeric_uid_without_passwd_entry_runs_with_gid_0_and_home_slash()
    {
        Assert.Equal("1000 0 0 /\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G) $HOME", "1000", "/")));
    }

    [Fact]
    public async Task Named_user_gets_passwd_ids_home_and_supplementary_groups()
    {
        Assert.Equal("1234 1235 1235 2000 /home/alice\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G) $HOME", "alice", "/")));
        // uid with a passwd entry: same as the name.
        Assert.Equal("1300 1300 1300 2000 /srv/bob\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G) $HOME", "1300", "/")));
    }

    [Fact]
    public async Task Explicit_group_replaces_primary_and_supplementary_groups()
    {
        Assert.Equal("1234 2001 2001\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G)", "alice:ops", "/")));
        Assert.Equal("4242 4343 4343\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G)", "4242:4343", "/")));
        Assert.Equal("1234 7 7\n", await Out(Sh("echo $(id -u) $(id -g) $(id -G)", "alice:7", "/")));
    }

    [Fact]
    public async Task Caller_HOME_wins_over_passwd()
    {
        Assert.Equal("/elsewhere\n", await Out(Sh("echo $HOME", "alice", "/", new() { ["HOME"] = "/elsewhere" })));
    }

    [Fact]
    public async Task Unknown_or_malformed_users_are_bad_requests()
    {
        foreach (var user in new[] { "mallory", "alice:nogroup", "a:b:c", ":1", "1:", "with space", "4294967295" })
        {
            var e = await Assert.ThrowsAsync<AgentException>(() => _c.RunToCompletionAsync(Sh("true", user), ExecHelpers.Timeout(30)));
            Assert.Equal("bad_request", e.Code);
        }
        var c = await Assert.ThrowsAsync<AgentException>(() => _c.ConfigureAsync(new GuestConfig { User = "mallory", Cwd = "/tmp" }, ExecHelpers.Timeout(30)));
        Assert.Equal("bad_request", c.Code);
        Assert.Contains("mallory", c.Message);
        var rel = await Assert.ThrowsAsync<AgentException>(() => _c.ConfigureAsync(new GuestConfig { Cwd = "relative" }, ExecHelpers.Timeout(30)));
        Assert.Equal("invalid_path", rel.Code);
        // Nothing of the rejected configure was applied.
        Assert.Equal("0 /root\n", await Out(Sh("echo $(id -u) $(pwd)")));
        // The agent survived all of it.
        Assert.False(_agent.HasExited);
    }

    [Fact]
    public async Task Configured_cwd_and_user_are_defaults_that_a_request_overrides()
    {
        string dir = Path.Combine(_agent.Directory, "work");
        Directory.CreateDirectory(dir);
        await _c.ConfigureAsync(new GuestConfig { Cwd = dir, User = "bob" }, ExecHelpers.Timeout(30));
        Assert.Equal($"1300 {dir} /srv/bob\n", await Out(Sh("echo $(id -u) $(pwd) $HOME")));
        Assert.Equal("0 /\n", await Out(Sh("echo $(id -u) $(pwd)", "root", "/")));
        // Empty strings restore the built-in defaults (an empty OCI User/WorkingDir means exactly that).
        await _c.ConfigureAsync(new GuestConfig { Cwd = "", User = "" }, ExecHelpers.Timeout(30));
        Assert.Equal("0 /root /root\n", await Out(Sh("echo $(id -u) $(pwd) $HOME")));
    }

    [Fact]
    public async Task Agent_environment_never_reaches_commands_and_caller_LD_LIBRARY_PATH_does()
    {
        foreach (var user in new string?[] { null, "alice" })
        {
            var env = await Out(new ExecSpec { Argv = ["env"], User = user, Cwd = "/" });
            Assert.DoesNotContain("agent-only-libs", env);
            Assert.DoesNotContain("BOUGH_AGENT_ONLY", env);
            Assert.DoesNotContain("DOTNET_", env);
            var mine = await Out(new ExecSpec { Argv = ["sh", "-c", "echo $LD_LIBRARY_PATH"], User = user, Cwd = "/", Env = new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "/caller/libs" } });
            Assert.Equal("/caller/libs\n", mine);
        }
    }

    [Fact]
    public async Task Trampolined_commands_get_default_signals_own_session_and_shell_like_failures()
    {
        // .NET ignores SIGPIPE; an ignored signal survives execve, so the trampoline must reset it.
        var status = await Out(new ExecSpec { Argv = ["cat", "/proc/self/status"], User = "alice", Cwd = "/" });
        string Field(string name) => status.Split('\n').First(l => l.StartsWith(name + ":"))[(name.Length + 1)..].Trim();
        Assert.Equal("0000000000000000", Field("SigIgn"));
        Assert.Equal("0000000000000000", Field("SigBlk"));
        Assert.Equal("1234\t1234\t1234\t1234", Field("Uid"));
        Assert.Equal("1235\t1235\t1235\t1235", Field("Gid"));
        // The command is the session leader (pid = sid), so timeouts kill its whole group.
        Assert.Equal("yes\n", await Out(Sh("[ $$ = $(cut -d' ' -f6 /proc/$$/stat) ] && echo yes", "alice", "/")));
        // Not executable for alice: 126 with a message, like a shell.
        string file = Path.Combine(_agent.Directory, "rootonly.sh");
        File.WriteAllText(file, "#!/bin/sh\necho hi\n");
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(_agent.Directory);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(_agent.Directory, (UnixFileMode)0b111_101_101);
        var (exit, _, stderr) = await _c.RunToCompletionAsync(new ExecSpec { Argv = [file], User = "alice", Cwd = "/" }, ExecHelpers.Timeout(30));
        Assert.Equal(126, exit.ExitCode);
        Assert.Contains("exec-as: " + file + ": errno 13", stderr.Text()); // EACCES
        // A timeout kills the trampolined command too.
        var (tx, _, _) = await _c.RunToCompletionAsync(new ExecSpec { Argv = ["sleep", "30"], User = "alice", Cwd = "/", Timeout = TimeSpan.FromSeconds(1) }, ExecHelpers.Timeout(30));
        Assert.True(tx.TimedOut);
    }

    [Fact]
    public async Task Trampoline_overhead_is_measured()
    {
        async Task<double> Avg(string? user)
        {
            await Out(new ExecSpec { Argv = ["true"], User = user, Cwd = "/" });
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 10; i++) await Out(new ExecSpec { Argv = ["true"], User = user, Cwd = "/" });
            return sw.Elapsed.TotalMilliseconds / 10;
        }
        double root = await Avg(null), user = await Avg("alice");
        output.WriteLine($"exec `true`: as root {root:F1} ms, as alice (trampoline) {user:F1} ms, overhead {user - root:F1} ms");
        Assert.True(user < 5000, $"trampolined exec took {user} ms");
    }
}
