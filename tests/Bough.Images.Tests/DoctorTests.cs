using Bough.HostSetup;
using Xunit.Abstractions;
using Bough.Images.Publish;

namespace Bough.Images.Tests;

[Collection("guest")]
public class DoctorTests(GuestFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Doctor_reports_packages_accel_kernel_image_and_disk()
    {
        Assert.NotNull(fx.Kernel);
        using var tmp = new TempDir();
        var agent = AgentLocator.Find() is { } a && File.Exists(a) ? a : StandInAgent.Write(tmp.Path);
        await new BaseImageBuilder(GuestFixture.CacheDataDir, fx.Kernel, agent).EnsureBaseAsync(null, CancellationToken.None);

        var results = await Doctor.RunAsync(GuestFixture.CacheDataDir, "tcg", CancellationToken.None, agent);
        foreach (var r in results) output.WriteLine($"{(r.Ok ? r.Warning ? "WARN" : "ok  " : "FAIL")} {r.Name}: {r.Detail}");

        Assert.All(results, r => Assert.True(r.Ok, $"{r.Name}: {r.Detail}"));
        Assert.Contains(results, r => r.Name == "package qemu-system-x86" && r.Detail.Contains("QEMU emulator version"));
        Assert.Contains(results, r => r.Name == "acceleration" && r.Detail.StartsWith("tcg"));
        Assert.Contains(results, r => r.Name == "guest kernel" && r.Detail.Contains(fx.Kernel.Version));
        Assert.Contains(results, r => r.Name == "base image" && r.Detail.StartsWith("current"));
        Assert.Contains(results, r => r.Name == "data directory");
        Assert.Contains(results, r => r.Name == "free disk");
    }

    [Fact]
    public async Task Doctor_on_an_empty_data_dir_says_what_to_do()
    {
        using var tmp = new TempDir();
        var results = await Doctor.RunAsync(tmp.Path, "auto", CancellationToken.None);
        Assert.Contains(results, r => r.Name == "guest kernel" && !r.Ok && r.Fix!.Contains("bough setup"));
        Assert.Contains(results, r => r.Name == "base image" && !r.Ok);
    }

    [Fact]
    public void Host_tsc_frequency_is_known_here_and_goes_on_the_kernel_command_line()
    {
        var khz = HostClock.TscKhz();
        output.WriteLine($"TSC {khz} kHz; cmdline: {fx.Kernel.CommandLine}");
        Assert.NotNull(khz);
        Assert.InRange(khz!.Value, 500_000, 10_000_000);
        Assert.Contains($"tsc_early_khz={khz}", fx.Kernel.CommandLine);
    }
}
