using Bough.HostSetup;
using Xunit.Abstractions;

namespace Bough.Images.Tests;

[Collection("guest")]
public class AccelerationTests(GuestFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Tcg_requested_is_tcg()
    {
        var d = await new AccelerationProbe().DecideAsync("tcg", "", "", "/nonexistent", CancellationToken.None);
        Assert.Equal("tcg", d.Accel);
    }

    [Fact]
    public async Task Kvm_requested_without_usable_device_is_a_clear_error()
    {
        var probe = new AccelerationProbe(options: new AccelProbeOptions { KvmDevice = "/nonexistent/kvm" });
        var e = await Assert.ThrowsAsync<SetupException>(() =>
            probe.DecideAsync("kvm", fx.Kernel.KernelPath, fx.Kernel.InitrdPath, "/nonexistent", CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Contains("KVM was requested", e.Message);
        Assert.Contains("/nonexistent/kvm", e.Message);
        Assert.Contains("--accel tcg", e.Message);
    }

    [Fact]
    public async Task Auto_without_usable_device_is_tcg()
    {
        var probe = new AccelerationProbe(options: new AccelProbeOptions { KvmDevice = "/nonexistent/kvm" });
        var d = await probe.DecideAsync("auto", fx.Kernel.KernelPath, fx.Kernel.InitrdPath, "/nonexistent", CancellationToken.None);
        Assert.Equal("tcg", d.Accel);
        Assert.Contains("not usable", d.Reason);
    }

    [Fact]
    public async Task Unknown_mode_is_rejected()
    {
        await Assert.ThrowsAsync<SetupException>(() => new AccelerationProbe().DecideAsync("hvf", "", "", "/x", CancellationToken.None));
    }

    /// <summary>
    /// On this machine /dev/kvm exists but a Linux guest dies under it, so auto must end on TCG and say
    /// why; the decision is cached so the second call does not boot again. Where KVM really works
    /// (a real host) the probe must pick it.
    /// </summary>
    [Fact]
    public async Task Auto_probes_once_and_caches()
    {
        using var tmp = new TempDir();
        var probe = new AccelerationProbe();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var d = await probe.DecideAsync("auto", fx.Kernel.KernelPath, fx.Kernel.InitrdPath, tmp.Path, CancellationToken.None);
        var first = sw.Elapsed;
        output.WriteLine($"{d.Accel}: {d.Reason} ({first.TotalSeconds:0.0} s)");
        Assert.Contains("KVM", d.Reason, StringComparison.OrdinalIgnoreCase);
        Assert.True(File.Exists(Path.Combine(tmp.Path, "cache", AccelerationProbe.CacheFileName)));

        sw.Restart();
        var again = await probe.DecideAsync("auto", fx.Kernel.KernelPath, fx.Kernel.InitrdPath, tmp.Path, CancellationToken.None);
        output.WriteLine($"cached: {again.Reason} ({sw.Elapsed.TotalSeconds:0.0} s)");
        Assert.Equal(d.Accel, again.Accel);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), "the cached decision should not boot a guest");

        if (KvmRunsLinuxHere() is false)
        {
            Assert.Equal("tcg", d.Accel);
            Assert.Contains("/dev/kvm is present but a Linux guest failed under it", d.Reason);
        }
        AssertNoProbeQemuLeft(fx.Kernel.KernelPath);
    }

    /// <summary>No vmx/svm flag: nested/paravirtual KVM that cannot run Linux (the machines this project is developed on).</summary>
    private static bool? KvmRunsLinuxHere()
    {
        if (!File.Exists("/dev/kvm")) return null;
        var cpuinfo = File.ReadAllText("/proc/cpuinfo");
        return System.Text.RegularExpressions.Regex.IsMatch(cpuinfo, @"\b(vmx|svm)\b") ? null : false;
    }

    private static void AssertNoProbeQemuLeft(string kernelPath)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => Path.GetFileName(d).All(char.IsDigit)))
        {
            string cmd;
            try { cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' '); }
            catch (IOException) { continue; }
            Assert.False(cmd.Contains("qemu-system") && cmd.Contains(AccelerationProbe.ProbeKernelArg) && cmd.Contains("accel kvm"),
                "probe QEMU still running: " + cmd);
        }
    }
}
