using System.Diagnostics;
using Bough.AgentClient;
using Bough.HostSetup;
using Bough.Images.Oci;
using Bough.Images.Rootfs;
using Xunit.Abstractions;
using Bough.Images.Kernel;
using Bough.Images.Publish;

namespace Bough.Images.Tests.Rootfs;

/// <summary>
/// An image with no shell and no libc (a static busybox at /usr/bin/busybox, the only executable; a data file, passwd/group)
/// built by <see cref="GuestImageBuilder"/> and booted once for the class: the guest runtime under
/// /.bough must do everything (init, agent on its private loader, users).
/// </summary>
public sealed class MinimalImageFixture : IAsyncLifetime
{
    public TempDir Tmp { get; } = new();
    public GuestImage Image { get; private set; } = null!;
    public GuestVm Vm { get; private set; } = null!;
    public TimeSpan BuildTime { get; private set; }
    public TimeSpan BootTime { get; private set; }
    public AgentConnection Agent => Vm.Agent;

    public static string RequireAgent() =>
        AgentLocator.Find() is { } a && File.Exists(a) ? a : throw new InvalidOperationException("the real agent is needed (build the tests; Build/Agent.targets publishes it)");

    public async Task InitializeAsync()
    {
        var kernel = await new KernelProvider(GuestFixture.CacheDataDir).EnsureAsync(null, CancellationToken.None);
        var builder = new GuestImageBuilder(Path.Combine(Tmp.Path, "data"), RequireAgent(), HostRequirements.BusyboxPath);
        var root = builder.NewStagingDir();
        Directory.CreateDirectory(Path.Combine(root, "usr/bin"));
        File.Copy(HostRequirements.BusyboxPath, Path.Combine(root, "usr/bin/busybox"));
        File.SetUnixFileMode(Path.Combine(root, "usr/bin/busybox"), (UnixFileMode)0b111_101_101);
        File.WriteAllText(Path.Combine(root, "data"), "hello from a shell-less image\n");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc/passwd"), "root:x:0:0:root:/root:/usr/bin/busybox\ntester:x:1500:1600:T:/home/tester:/usr/bin/busybox\n");
        File.WriteAllText(Path.Combine(root, "etc/group"), "root:x:0:\ntesters:x:1600:\nextra:x:1700:tester\n");
        var config = new OciImageConfig(["PATH=/usr/bin", "IMAGE_VAR=1"], "/srv/app", "tester", null, ["/usr/bin/busybox", "sh"]);

        var sw = Stopwatch.StartNew();
        Image = await builder.PublishAsync("minimal", root, config, "sha256:" + new string('a', 64), null, null, CancellationToken.None);
        BuildTime = sw.Elapsed;
        var vmDir = Directory.CreateDirectory(Path.Combine(Tmp.Path, "vm")).FullName;
        sw.Restart();
        Vm = await GuestVm.BootAsync(kernel, Image.DiskPath, vmDir, TimeSpan.FromSeconds(240));
        BootTime = sw.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (Vm != null) await Vm.DisposeAsync();
        Tmp.Dispose();
    }
}

[Collection("guest")]
public sealed class MinimalImageTests(MinimalImageFixture fx, ITestOutputHelper output) : IClassFixture<MinimalImageFixture>
{
    private static ExecSpec Bb(string? user, params string[] args) => new() { Argv = ["/usr/bin/busybox", .. args], User = user };

    [Fact]
    public async Task Shellless_image_boots_and_runs_commands_with_the_agent_on_its_private_loader()
    {
        output.WriteLine($"build {fx.BuildTime.TotalSeconds:0.0} s, boot to agent {fx.BootTime.TotalSeconds:0.0} s");
        var console = fx.Vm.Console();
        output.WriteLine(console);
        Assert.Contains(GuestMarkers.InitDone, console);
        Assert.Equal("hello from a shell-less image\n", await fx.Agent.Out(Bb(null, "cat", "/data")));
        // The kernel accepted the rewritten PT_INTERP: the agent maps /.bough's loader and libc, nothing else.
        var maps = await fx.Agent.Out(Bb(null, "cat", $"/proc/{fx.Agent.Hello.Pid}/maps"));
        Assert.Contains("/.bough/lib/ld.so", maps);
        Assert.Contains("/.bough/lib/libc.so.6", maps);
        Assert.Equal($"nameserver {GuestNetwork.Dns}\n", await fx.Agent.Out(Bb(null, "cat", "/etc/resolv.conf")));
        Assert.Equal("1777\n", await fx.Agent.Out(Bb(null, "stat", "-c", "%a", "/tmp")));
        // The image's WorkingDir was created at build time.
        Assert.Equal("directory\n", await fx.Agent.Out(Bb(null, "stat", "-c", "%F", "/srv/app")));
        // busybox ash is PID 1.
        Assert.Contains("/.bough/bin/busybox", await fx.Agent.Out(Bb(null, "cat", "/proc/1/cmdline")));
    }

    [Fact]
    public async Task Users_and_defaults_from_configure()
    {
        // Before configure: root in /root (created by the builder).
        Assert.Equal("0 0 /root /root\n", await fx.Agent.Out(Bb(null, "sh", "-c", "echo $(/usr/bin/busybox id -u) $(/usr/bin/busybox id -g) $(/usr/bin/busybox pwd) $HOME")));
        Assert.Equal("1000 0\n", await fx.Agent.Out(Bb("1000", "sh", "-c", "echo $(/usr/bin/busybox id -u) $(/usr/bin/busybox id -g)")));
        Assert.Equal("1500 1600 1600 1700 /home/tester\n",
            await fx.Agent.Out(Bb("tester", "sh", "-c", "echo $(/usr/bin/busybox id -u) $(/usr/bin/busybox id -g) $(/usr/bin/busybox id -G) $HOME")));
        var bad = await Assert.ThrowsAsync<AgentException>(() => fx.Agent.Run(Bb("nobody-here", "true")));
        Assert.Equal("bad_request", bad.Code);

        var cfg = fx.Image.Config;
        try
        {
            await fx.Agent.ConfigureAsync(new GuestConfig
            {
                Cwd = cfg.WorkingDir, User = cfg.User,
                Env = cfg.Env.Select(e => e.Split('=', 2)).ToDictionary(p => p[0], p => p[1]),
            }, CancellationToken.None);
            Assert.Equal("1500 /srv/app 1 /usr/bin\n",
                await fx.Agent.Out(Bb(null, "sh", "-c", "echo $(/usr/bin/busybox id -u) $(/usr/bin/busybox pwd) $IMAGE_VAR $PATH")));
            Assert.Equal("0\n", await fx.Agent.Out(Bb("root", "id", "-u")));
        }
        finally
        {
            await fx.Agent.ConfigureAsync(new GuestConfig { Cwd = "", User = "" }, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Agent_environment_does_not_leak_into_commands()
    {
        foreach (var user in new string?[] { null, "tester" })
        {
            var env = await fx.Agent.Out(Bb(user, "env"));
            Assert.DoesNotContain("LD_LIBRARY_PATH", env);
            Assert.DoesNotContain("DOTNET_", env);
            Assert.DoesNotContain("/.bough", env);
        }
        // The agent itself does run with it.
        var agentEnv = await fx.Agent.Out(Bb(null, "strings", $"/proc/{fx.Agent.Hello.Pid}/environ"));
        Assert.Contains("LD_LIBRARY_PATH=/.bough/lib", agentEnv);
    }

    [Fact]
    public async Task Orphans_of_commands_are_reaped_by_init()
    {
        // The command backgrounds a child and exits; the child is reparented to PID 1 and exits a second later.
        var pid = (await fx.Agent.Out(Bb("tester", "sh", "-c", "/usr/bin/busybox sleep 1 & echo $!"))).Trim();
        Assert.Matches("^[0-9]+$", pid);
        string state = "";
        for (int i = 0; i < 40; i++)
        {
            state = (await fx.Agent.Out(Bb(null, "sh", "-c", $"[ -e /proc/{pid}/stat ] && /usr/bin/busybox cut -d' ' -f3,4 /proc/{pid}/stat || echo gone"))).Trim();
            if (state == "gone") break;
            await Task.Delay(500);
        }
        Assert.Equal("gone", state); // a zombie would stay as "Z 1"
    }

    [Fact]
    public async Task Trampoline_overhead_in_the_guest_is_measured()
    {
        async Task<double> Avg(string? user)
        {
            await fx.Agent.Out(Bb(user, "true"));
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 3; i++) await fx.Agent.Out(Bb(user, "true"));
            return sw.Elapsed.TotalMilliseconds / 3;
        }
        double root = await Avg(null), user = await Avg("tester");
        output.WriteLine($"guest exec `true` (TCG): as root {root:F0} ms, as tester (exec-as trampoline) {user:F0} ms");
        Assert.True(user < 60_000);
    }
}
