using Bough.Engine.Boot;

namespace Bough.Engine.Tests.Sandboxes;

/// <summary>The translation cache size is a setting: it reaches QEMU's spec and the cgroup's memory limit.</summary>
public sealed class TcgCacheTests
{
    [Fact]
    public async Task The_setting_reaches_the_vm_spec_and_its_memory_limit()
    {
        await using var h = await EngineHarness.StartAsync(o => o.Jail.TcgTranslationCacheMiB = 24);
        await h.CreateAsync();
        var spec = Assert.Single(h.Launcher.Vms).Spec;
        Assert.Equal(24, spec.TcgTranslationCacheMiB);
        var limits = spec.Confinement!.Limits!;
        Assert.Equal((long)(spec.MemoryMiB + h.Options.Jail.MemoryOverheadMiB + 24) << 20, limits.MemoryBytes);
    }

    [Fact]
    public async Task The_default_is_64_MiB()
    {
        await using var h = await EngineHarness.StartAsync();
        await h.CreateAsync();
        Assert.Equal(VmJailOptions.DefaultTcgTranslationCacheMiB, Assert.Single(h.Launcher.Vms).Spec.TcgTranslationCacheMiB);
        Assert.Equal(64, VmJailOptions.DefaultTcgTranslationCacheMiB);
    }

    [Theory]
    [InlineData("16", 16)]
    [InlineData("2048", 2048)]
    [InlineData("0", null)]
    [InlineData("-8", null)]
    [InlineData("4096", null)]
    [InlineData("16M", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void The_environment_override_takes_only_a_usable_size(string? value, int? expected) =>
        Assert.Equal(expected, VmSpecFactory.TcgCacheOverride(value));

    [Fact]
    public void Validate_refuses_a_cache_of_zero()
    {
        var options = new VmJailOptions { TcgTranslationCacheMiB = 0 };
        Assert.Throws<ArgumentException>(options.Validate);
    }
}
