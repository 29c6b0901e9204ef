using Bough.HostSetup;

namespace Bough.Images.Tests;

public class HostRequirementsTests
{
    [Fact]
    public void Required_packages_are_listed()
    {
        var names = HostRequirements.All.Select(p => p.Name).ToList();
        foreach (var n in new[] { "qemu-system-x86", "qemu-utils", "busybox-static", "e2fsprogs", "cpio" })
            Assert.Contains(n, names);
    }

    [Fact]
    public void This_host_has_everything()
    {
        Assert.Empty(new HostRequirements().Missing());
    }

    [Fact]
    public async Task Non_root_with_missing_packages_gets_the_exact_commands()
    {
        var system = HostSystem.Current with
        {
            IsRoot = () => false,
            FindCommand = c => c is "cpio" or "qemu-img" ? null : CommandLocator.Find(c),
        };
        var req = new HostRequirements(system);
        Assert.Equal(["qemu-utils", "cpio"], req.Missing().Select(p => p.Name));

        var e = await Assert.ThrowsAsync<SetupException>(() => req.InstallMissingAsync(null, CancellationToken.None));
        Assert.Contains("sudo apt-get update", e.Message);
        Assert.Contains("sudo apt-get install -y --no-install-recommends qemu-utils cpio", e.Message);
        Assert.Contains("not running as root", e.Message);
    }

    [Fact]
    public void Dynamic_busybox_counts_as_missing_busybox_static()
    {
        var req = new HostRequirements(HostSystem.Current with { IsStaticElf = _ => false });
        Assert.Contains(req.Missing(), p => p.Name == "busybox-static");
    }

    [Fact]
    public void Elf_static_check_tells_busybox_from_a_dynamic_binary()
    {
        Assert.True(Elf.IsStatic("/bin/busybox"));
        Assert.False(Elf.IsStatic("/bin/ls"));
    }

    [Fact]
    public async Task Root_with_nothing_missing_does_nothing()
    {
        var messages = new List<SetupProgress>();
        await new HostRequirements().InstallMissingAsync(new SyncProgress<SetupProgress>(messages.Add), CancellationToken.None);
        Assert.Contains(messages, m => m.Message.Contains("all host packages are installed"));
    }
}

/// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool, racing the asserts).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
