using System.Globalization;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// Every sandbox's QEMU runs jailed: its own unprivileged uid, seccomp, its own cgroups with limits; a capture and
/// a restore work inside the jail; uid and cgroups go with the VM; a restarted daemon adopts a jailed VM. (The console cap is tested
/// in Bough.Vmm.Tests with a small cap: the emulated UART sends only about 11 KB/s, so flooding past the default
/// 8 MiB would take a quarter of an hour.)
/// </summary>
[Collection("daemon")]
public sealed class JailTests(DaemonFixture f)
{
    private BoughClient Client => f.Daemon.Client;

    [Fact]
    public async Task A_vm_runs_as_its_own_uid_under_seccomp_in_its_cgroups_and_both_go_with_it()
    {
        var source = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var cleanup = new List<string> { source.Id };
        try
        {
            var jail = Jail.Of(source.Pid!.Value);
            Assert.InRange(jail.Uid, f.Daemon.VmUidBase, f.Daemon.VmUidBase + 65_535);
            Assert.Equal("2", jail.Status["Seccomp"]);
            Assert.Equal("0000000000000000", jail.Status["CapEff"]);
            Assert.Equal(Gid("bough-vm"), jail.Gid);
            Assert.All(jail.Cgroups.Values, dir => Assert.EndsWith("/" + source.Id, dir, StringComparison.Ordinal));
            // 256 MiB guest + 192 MiB overhead + 64 MiB TCG translation cache; 1 vCPU; 256 tasks.
            Assert.Equal((512L << 20).ToString(CultureInfo.InvariantCulture), Read(jail.Cgroups["memory"], "memory.limit_in_bytes"));
            Assert.Equal("100000", Read(jail.Cgroups["cpu"], "cpu.cfs_quota_us"));
            Assert.Equal("256", Read(jail.Cgroups["pids"], "pids.max"));

            // Capture (device state and the new overlay reach QEMU as descriptors) and restore inside the jail.
            await Run(source.Id, "echo from-source > /root/mark");
            var branch = await Client.BranchAsync(source.Id, new BranchRequest { Count = 1 });
            var child = Assert.Single(branch.Children);
            cleanup.Add(child.Id);
            Assert.Equal("from-source\n", await Run(child.Id, "cat /root/mark"));
            Assert.Equal("from-source\n", await Run(source.Id, "cat /root/mark"));
            await Run(source.Id, "echo after-capture > /root/mark2 && sync");
            var childJail = Jail.Of(child.Pid!.Value);
            Assert.NotEqual(jail.Uid, childJail.Uid);
            Assert.Equal("2", childJail.Status["Seccomp"]);

            // Deleting the source removes its cgroups.
            await Client.DeleteSandboxAsync(source.Id);
            cleanup.Remove(source.Id);
            Assert.All(jail.Cgroups.Values, dir => Assert.False(Directory.Exists(dir), $"{dir} left behind"));
            var next = await Client.CreateSandboxAsync(new CreateSandboxRequest());
            cleanup.Add(next.Id);
            // The source's uid is freed only after its firewall rules are removed (asynchronously, once its QEMU is
            // gone), so the next VM may or may not get it back; it never gets a uid a live VM holds.
            var nextUid = Jail.Of(next.Pid!.Value).Uid;
            Assert.NotEqual(childJail.Uid, nextUid);
            Assert.InRange(nextUid, f.Daemon.VmUidBase, f.Daemon.VmUidBase + 65_535);
        }
        finally
        {
            foreach (var id in cleanup)
                try { await Client.DeleteSandboxAsync(id); } catch (BoughApiException e) when (e.Status == 404) { }
        }
    }

    [Fact]
    public async Task A_restarted_daemon_adopts_a_jailed_vm_and_removes_cgroups_no_sandbox_owns()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var sb = await first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        var jail = Jail.Of(sb.Pid!.Value);
        await first.KillHardAsync();
        Assert.True(HostProcess.IsAlive(sb.Pid.Value), "the jailed VM should survive a daemon crash");
        // A leftover cgroup of a sandbox that no longer exists, next to the live one.
        var stale = jail.Cgroups.Values.Select(d => Path.Combine(Path.GetDirectoryName(d)!, "sb-gone")).ToList();
        foreach (var d in stale) Directory.CreateDirectory(d);

        await using var second = await DaemonProcess.StartAsync(dataDir);
        var again = await second.Client.GetSandboxAsync(sb.Id);
        Assert.Equal(SandboxStates.Running, again.State);
        Assert.Equal(sb.Pid, again.Pid);
        Assert.Equal("adopted\n", (await second.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["echo", "adopted"] })).Stdout);
        Assert.All(stale, d => Assert.False(Directory.Exists(d), $"{d} was not removed at start-up"));
        Assert.All(jail.Cgroups.Values, d => Assert.True(Directory.Exists(d)));

        // The adopted VM keeps its uid: a new sandbox gets another one.
        var other = await second.Client.CreateSandboxAsync(new CreateSandboxRequest());
        Assert.NotEqual(jail.Uid, Jail.Of(other.Pid!.Value).Uid);
        await second.Client.DeleteSandboxAsync(other.Id);
        await second.Client.DeleteSandboxAsync(sb.Id);
        Assert.False(HostProcess.IsAlive(sb.Pid.Value));
        Assert.All(jail.Cgroups.Values, d => Assert.False(Directory.Exists(d), $"{d} left behind"));
    }

    private async Task<string> Run(string id, string script)
    {
        var r = await Client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        Assert.True(r.ExitCode == 0, $"'{script}' in {id} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }

    private static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    private static int Gid(string group) =>
        int.Parse(File.ReadLines("/etc/group").First(l => l.StartsWith(group + ":", StringComparison.Ordinal)).Split(':')[2],
            CultureInfo.InvariantCulture);

    /// <summary>A QEMU's identity, seccomp mode and cgroup directories, read from /proc.</summary>
    private sealed record Jail(int Uid, int Gid, IReadOnlyDictionary<string, string> Status, IReadOnlyDictionary<string, string> Cgroups)
    {
        public static Jail Of(int pid)
        {
            var status = File.ReadAllLines($"/proc/{pid}/status").Select(l => l.Split(':', 2))
                .ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);
            var uids = status["Uid"].Split('\t').Distinct().ToList();
            var gids = status["Gid"].Split('\t').Distinct().ToList();
            Assert.Single(uids);
            Assert.Single(gids);
            var cgroups = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
            {
                var p = line.Split(':', 3);
                foreach (var controller in new[] { "memory", "cpu", "pids" })
                    if (p[1].Split(',').Contains(controller)) cgroups[controller] = "/sys/fs/cgroup/" + controller + p[2];
            }
            return new Jail(int.Parse(uids[0], CultureInfo.InvariantCulture), int.Parse(gids[0], CultureInfo.InvariantCulture), status, cgroups);
        }
    }
}
