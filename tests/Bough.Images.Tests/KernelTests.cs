using Bough.HostSetup;
using Xunit.Abstractions;
using Bough.Images.Kernel;

namespace Bough.Images.Tests;

[Collection("guest")]
public class KernelTests(GuestFixture fx, ITestOutputHelper output)
{
    [Fact]
    public void Kernel_is_installed_with_initramfs_and_modules()
    {
        output.WriteLine($"kernel {fx.Kernel.Version}: ensure took {fx.KernelEnsureTime.TotalSeconds:0.0} s (cached before: {fx.KernelWasCached})");
        Assert.True(File.Exists(fx.Kernel.KernelPath));
        Assert.True(File.Exists(fx.Kernel.InitrdPath));
        Assert.Matches(@"^\d+\.\d+\.\d+-\d+-cloud-amd64$", fx.Kernel.Version);
        Assert.Contains("console=ttyS0", fx.Kernel.CommandLine);
        var modules = Path.Combine(Path.GetDirectoryName(fx.Kernel.KernelPath)!, "modules");
        foreach (var m in Initramfs.Modules) Assert.True(File.Exists(Path.Combine(modules, m + ".ko")), m);
        Assert.Equal(fx.Kernel, new KernelProvider(GuestFixture.CacheDataDir).TryGet());
    }

    [Fact]
    public async Task Kernel_boots_initramfs_in_probe_mode_under_tcg()
    {
        using var tmp = new TempDir();
        var r = await Qemu.BootAsync(fx.Kernel, AccelerationProbe.ProbeKernelArg, [], tmp.Path,
            c => c.Contains(GuestMarkers.ProbeOk), TimeSpan.FromSeconds(60));
        output.WriteLine($"probe boot: {r.Elapsed.TotalSeconds:0.00} s, exited={r.Exited}\n{r.Console}\n{r.Stderr}");
        Assert.True(r.Matched, "no probe marker on the console:\n" + r.Console + r.Stderr);
        Assert.DoesNotContain(GuestMarkers.InitFailed, r.Console);
    }

    [Fact]
    public async Task Second_ensure_is_served_from_disk()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var k = await new KernelProvider(GuestFixture.CacheDataDir).EnsureAsync(null, CancellationToken.None);
        Assert.Equal(fx.Kernel, k);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task Without_root_disk_the_initramfs_fails_loudly()
    {
        using var tmp = new TempDir();
        var r = await Qemu.BootAsync(fx.Kernel, "", [], tmp.Path,
            c => c.Contains(GuestMarkers.InitFailed), TimeSpan.FromSeconds(90));
        output.WriteLine(r.Console);
        Assert.True(r.Matched, r.Console);
        Assert.Contains("/dev/vda", r.Console);
    }
}
