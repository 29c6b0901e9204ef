using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// Sandbox lifetimes with real VMs: a deadline kills or pauses, and a deadline set before a daemon crash is enforced
/// by the next daemon. (The timing rules themselves are tested in the engine tests with a fake clock.)
/// </summary>
[Collection("daemon")]
public sealed class LifetimeTests
{
    private static async Task<Sandbox?> WaitForAsync(BoughClient client, string id, Func<Sandbox?, bool> done, TimeSpan limit)
    {
        Sandbox? last = null;
        var ok = await Poll.UntilAsync(async () =>
        {
            try { last = await client.GetSandboxAsync(id); }
            catch (BoughApiException ex) when (ex.Status == 404) { last = null; }
            return done(last);
        }, limit, TimeSpan.FromMilliseconds(500));
        Assert.True(ok, $"sandbox {id} did not reach the expected state in {limit} (last: {last?.State ?? "gone"})");
        return last;
    }

    [Fact]
    public async Task A_deadline_kills_or_pauses_and_a_crashed_daemons_deadline_is_enforced_by_the_next()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        string? crashed = null;
        try
        {
            var killed = await first.Client.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 5 });
            var paused = await first.Client.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 5, OnTimeout = "pause" });
            Assert.NotNull(killed.EndAt);
            Assert.Equal("pause", paused.OnTimeout);
            await first.Client.ExecAsync(paused.Id, new ExecRequest { Cmd = ["sh", "-c", "echo kept > /root/mark"] });

            await WaitForAsync(first.Client, killed.Id, s => s is null, TimeSpan.FromMinutes(2));
            Assert.False(HostProcess.IsAlive(killed.Pid!.Value), "the killed sandbox's QEMU is still running");
            var p = await WaitForAsync(first.Client, paused.Id, s => s?.State == SandboxStates.Paused, TimeSpan.FromMinutes(2));
            Assert.Null(p!.EndAt); // a paused sandbox has no deadline
            var resumed = await first.Client.ResumeAsync(paused.Id);
            Assert.Equal("kept\n", (await first.Client.ExecAsync(resumed.Id, new ExecRequest { Cmd = ["cat", "/root/mark"] })).Stdout);
            await first.Client.DeleteSandboxAsync(paused.Id);

            // A deadline that passes while no daemon runs is enforced by the next one.
            var later = await first.Client.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 20, OnTimeout = "pause" });
            crashed = later.Id;
            await first.KillHardAsync();
            await Task.Delay(TimeSpan.FromSeconds(20));
        }
        finally
        {
            await first.DisposeAsync();
        }

        await using var second = await DaemonProcess.StartAsync(dataDir);
        await WaitForAsync(second.Client, crashed!, s => s?.State == SandboxStates.Paused, TimeSpan.FromMinutes(2));
        await second.Client.DeleteSandboxAsync(crashed!);
    }
}
