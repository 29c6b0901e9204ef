using System.Diagnostics;
using Bough.AgentClient;
using Bough.HostSetup;
using Bough.Images.Rootfs;
using Xunit.Abstractions;
using Bough.Images.Publish;

namespace Bough.Images.Tests.Rootfs;

/// <summary>
/// The debian-python recipe end to end: debootstrap from the host's Debian mirror (several minutes),
/// publish, boot, run python and pip. Slow, so it carries Category=Slow for local filtering, but CI
/// runs it. Builds into a temp data dir that is removed afterwards: nothing is cached between runs.
/// </summary>
[Collection("guest")]
public sealed class DebianPythonTests(GuestFixture fx, ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Slow")]
    public async Task Debian_python_recipe_builds_boots_and_runs_python_and_pip()
    {
        using var tmp = new TempDir();
        var builder = new GuestImageBuilder(Path.Combine(tmp.Path, "data"), MinimalImageFixture.RequireAgent(), HostRequirements.BusyboxPath);
        var root = builder.NewStagingDir();
        var lines = 0;
        var progress = new Progress(p => { if (Interlocked.Increment(ref lines) % 50 == 1) output.WriteLine(p.Message); });
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        var config = await ImageRecipes.BuildRootAsync(ImageRecipes.DebianPython, root, progress, cts.Token);
        output.WriteLine($"debootstrap: {sw.Elapsed.TotalSeconds:0} s, {lines} progress lines");
        Assert.True(lines > 10, "debootstrap progress was not streamed");
        Assert.Equal("/root", config.WorkingDir);
        Assert.Equal(["python3"], config.Cmd);
        Assert.Contains("LANG=C.UTF-8", config.Env);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "var/lib/apt/lists")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "usr/share/doc")));

        sw.Restart();
        var image = await builder.PublishAsync(ImageRecipes.DebianPython, root, config, null, null, progress, cts.Token);
        output.WriteLine($"publish: {sw.Elapsed.TotalSeconds:0} s, content {image.ContentBytes >> 20} MiB, disk {image.DiskBytes >> 20} MiB, " +
                         $"qcow2 {new FileInfo(image.DiskPath).Length >> 20} MiB");

        var vmDir = Directory.CreateDirectory(Path.Combine(tmp.Path, "vm")).FullName;
        sw.Restart();
        await using var vm = await GuestVm.BootAsync(fx.Kernel, image.DiskPath, vmDir, TimeSpan.FromSeconds(300));
        output.WriteLine($"boot to agent: {sw.Elapsed.TotalSeconds:0.0} s");
        await vm.Agent.ConfigureAsync(new GuestConfig
        {
            Cwd = config.WorkingDir,
            Env = config.Env.Select(e => e.Split('=', 2)).ToDictionary(p => p[0], p => p[1]),
        }, CancellationToken.None);

        Assert.Equal("42\n", await vm.Agent.Out(new ExecSpec { Argv = ["python3", "-c", "print(6*7)"] }));
        var pip = await vm.Agent.Out(new ExecSpec { Argv = ["pip", "--version"] });
        Assert.StartsWith("pip ", pip);
        output.WriteLine(pip);
        // The image's glibc and the agent's are independent; a Debian user resolves from Debian's passwd.
        Assert.Equal("65534\n", await vm.Agent.Out(new ExecSpec { Argv = ["id", "-u"], User = "nobody" }));
        Assert.Equal("/root\n", await vm.Agent.Out(new ExecSpec { Argv = ["pwd"] }));
    }

    private sealed class Progress(Action<SetupProgress> report) : IProgress<SetupProgress>
    {
        public void Report(SetupProgress value) => report(value);
    }
}
