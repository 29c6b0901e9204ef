using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// Every create is a restore: the first create of a shape publishes its boot snapshot, and sandboxes restored
/// from it are as independent as cold-booted ones. The shape here (288 MiB) is this test's own, so the shared
/// daemon's other sandboxes neither make nor use its boot snapshot.
/// </summary>
[Collection("daemon")]
public sealed class BootSnapshotTests(DaemonFixture f)
{
    private const int MemoryMiB = 288;

    private BoughClient Client => f.Daemon.Client;

    [Fact]
    public async Task Sandboxes_restored_from_a_boot_snapshot_are_independent_and_coldBoot_boots_cold()
    {
        var cleanup = new List<string>();
        string? captured = null;
        try
        {
            var first = await Create(new() { ["ROLE"] = "first" });
            cleanup.Add(first.Id);
            Assert.Equal(SandboxBoots.Cold, first.Boot);
            var boot = Assert.Single(await Client.ListSnapshotsAsync(), s => s.Kind == "boot" && s.SourceSandboxId == first.Id);
            Assert.Equal(MemoryMiB, boot.MemoryMiB);

            var pair = await Task.WhenAll(Create(new() { ["ROLE"] = "a" }), Create(new() { ["ROLE"] = "b" }));
            cleanup.AddRange(pair.Select(s => s.Id));
            Assert.All(pair, s => Assert.Equal(SandboxBoots.Restored, s.Boot));
            Assert.All(pair, s => Assert.Equal(boot.Id, s.SnapshotId));

            // Read at once, while the restored guests are as young as they get: RNG output, a random uuid, the clock.
            // The guest clocks must fall between the host's before the requests and after the answers (± 1 s).
            var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var seen = await Task.WhenAll(pair.Select(s => Run(s.Id,
                "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; cat /proc/sys/kernel/random/uuid; date +%s; hostname; echo \"$ROLE\"")));
            var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var lines = seen.Select(s => s.Split('\n', StringSplitOptions.RemoveEmptyEntries)).ToArray();
            Assert.NotEqual(lines[0][0], lines[1][0]); // /dev/urandom: fresh entropy, reseeded, in each
            Assert.NotEqual(lines[0][1], lines[1][1]);
            for (var i = 0; i < 2; i++)
            {
                Assert.InRange(long.Parse(lines[i][2]), before - 1, after + 1);
                Assert.Equal(pair[i].Id, lines[i][3]);
                Assert.Equal(i == 0 ? "a" : "b", lines[i][4]);
            }
            Assert.Equal(pair[0].Id + "\n", await Run(pair[0].Id, "cat /etc/hostname"));

            // Disks are private: a file written in one is in no other (nor in the boot snapshot the next one starts from).
            await Run(pair[0].Id, "echo mine > /root/only-in-a");
            foreach (var other in new[] { first.Id, pair[1].Id })
                Assert.Equal("absent\n", await Run(other, "test -e /root/only-in-a && echo present || echo absent"));

            // A restored sandbox's first capture stores what changed since the boot, not the boot again.
            var capture = await Client.CreateSnapshotAsync(pair[1].Id);
            captured = capture.Id;
            Assert.Equal(boot.Id, capture.ParentId);
            Assert.True(capture.MemoryBytes * 4 < boot.MemoryBytes,
                $"the first capture of a restored sandbox stored {capture.MemoryBytes} bytes; the boot snapshot holds {boot.MemoryBytes}");

            var cold = await Client.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = MemoryMiB, ColdBoot = true });
            cleanup.Add(cold.Id);
            Assert.Equal(SandboxBoots.Cold, cold.Boot);
            Assert.Null(cold.SnapshotId);
            Assert.Equal(cold.Id + "\n", await Run(cold.Id, "hostname"));
            Assert.Single(await Client.ListSnapshotsAsync(), s => s.Kind == "boot" && s.MemoryMiB == MemoryMiB);
        }
        finally
        {
            foreach (var id in cleanup)
                try { await Client.DeleteSandboxAsync(id); } catch (BoughApiException e) when (e.Status == 404) { }
            if (captured is not null) await Client.DeleteSnapshotAsync(captured, cascade: true);
        }
    }

    private Task<Sandbox> Create(Dictionary<string, string> env) =>
        Client.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = MemoryMiB, Env = env });

    private async Task<string> Run(string id, string script)
    {
        var r = await Client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        Assert.True(r.ExitCode == 0, $"'{script}' in {id} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }
}
