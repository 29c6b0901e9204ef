using System.Security.Cryptography;
using Bough.AgentClient;

namespace Bough.Agent.Tests;

/// <summary>
/// configure changes machine-wide state. These tests never touch the host: the hostname part runs
/// against an agent started in its own UTS namespace (`unshare --uts`) with --hostname-file pointing
/// into a temp dir, and the clock is only exercised through validation.
/// </summary>
public sealed class ConfigureTests
{
    private static string HostHostname() => File.ReadAllText("/proc/sys/kernel/hostname").Trim();

    [Fact]
    public async Task Hostname_entropy_and_env_in_an_isolated_uts_namespace()
    {
        string before = HostHostname();
        await using var agent = await AgentProcess.StartAsync(isolatedUts: true);
        await using var c = await agent.ConnectAsync();
        await c.ConfigureAsync(new GuestConfig
        {
            Hostname = "bough-test-guest",
            Entropy = RandomNumberGenerator.GetBytes(64),
            Env = new Dictionary<string, string> { ["BOUGH_CONFIGURED"] = "yes" },
        }, ExecHelpers.Timeout(30));

        var health = await c.HealthAsync(ExecHelpers.Timeout(30));
        Assert.Equal("bough-test-guest", health.Hostname);
        Assert.Equal("bough-test-guest\n", await File.ReadAllTextAsync(Path.Combine(agent.Directory, "hostname")));
        var (_, stdout, _) = await c.Run("sh", "-c", "cat /proc/sys/kernel/hostname; echo $BOUGH_CONFIGURED");
        Assert.Equal("bough-test-guest\nyes\n", stdout.Text());
        Assert.Equal(before, HostHostname());
    }

    [Fact]
    public async Task Invalid_values_are_rejected_before_anything_is_applied()
    {
        string before = HostHostname();
        await using var agent = await AgentProcess.StartAsync(isolatedUts: true);
        await using var c = await agent.ConnectAsync();
        async Task<string> Code(GuestConfig g) => (await Assert.ThrowsAsync<AgentException>(() => c.ConfigureAsync(g, ExecHelpers.Timeout(30)))).Code;

        // Valid hostname + invalid clock: nothing may be applied.
        Assert.Equal("bad_request", await Code(new GuestConfig { Hostname = "should-not-apply", UnixTimeMs = 5 }));
        Assert.Equal("bad_request", await Code(new GuestConfig { UnixTimeMs = long.MaxValue }));
        Assert.Equal("bad_request", await Code(new GuestConfig { Hostname = "bad host!" }));
        Assert.Equal("bad_request", await Code(new GuestConfig { Hostname = "" }));
        Assert.Equal("bad_request", await Code(new GuestConfig { Entropy = [] }));
        Assert.Equal("bad_request", await Code(new GuestConfig { Entropy = new byte[5000] }));
        Assert.Equal("bad_request", await Code(new GuestConfig { Env = new Dictionary<string, string> { ["A=B"] = "x" } }));
        var health = await c.HealthAsync(ExecHelpers.Timeout(30));
        Assert.NotEqual("should-not-apply", health.Hostname);
        Assert.False(File.Exists(Path.Combine(agent.Directory, "hostname")));
        Assert.Equal(before, HostHostname());
    }

    [Fact]
    public async Task Health_reports_version_uptime_boot_id()
    {
        await using var agent = await AgentProcess.StartAsync();
        await using var c = await agent.ConnectAsync();
        var h = await c.HealthAsync(ExecHelpers.Timeout(30));
        Assert.Equal(c.Hello.AgentVersion, h.AgentVersion);
        Assert.False(string.IsNullOrEmpty(h.AgentVersion));
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(), h.BootId);
        Assert.True(h.SystemUptime > TimeSpan.Zero);
        Assert.True(h.AgentUptime >= TimeSpan.Zero);
        Assert.Equal(HostHostname(), h.Hostname);
    }
}
