using System.Net;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>Live branching, pause/resume and snapshots against real VMs.</summary>
[Collection("daemon")]
public sealed class SnapshotTests(DaemonFixture f)
{
    private BoughClient Client => f.Daemon.Client;

    private async Task<string> Run(string id, string script)
    {
        var r = await Client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        Assert.True(r.ExitCode == 0, $"'{script}' in {id} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }

    private async Task<long> Counter(string id) => long.Parse((await Run(id, "cat /tmp/counter")).Trim());

    private async Task DeleteAll(IEnumerable<string> sandboxes)
    {
        foreach (var s in sandboxes)
            try { await Client.DeleteSandboxAsync(s); } catch (BoughApiException e) when (e.Status == 404) { }
    }

    [Fact]
    public async Task Branch_children_carry_on_with_the_sources_memory_and_files_then_diverge()
    {
        var source = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var cleanup = new List<string> { source.Id };
        try
        {
            // A counter and a shell whose only copy of SECRET is in its memory.
            await Run(source.Id, "setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done' >/dev/null 2>&1 &");
            await Run(source.Id, "setsid sh -c 'SECRET=kept-in-ram; while true; do echo $SECRET > /tmp/secret; sleep 0.3; done' >/dev/null 2>&1 &");
            await Run(source.Id, "echo before > /root/before.txt");
            await Task.Delay(1000);

            var branch = await Client.BranchAsync(source.Id, new BranchRequest { Count = 2 });
            cleanup.AddRange(branch.Children.Select(c => c.Id));
            Assert.Equal(2, branch.Children.Count);
            Assert.True(branch.PauseMs >= 0);
            Assert.Equal(source.Id, branch.Snapshot.SourceSandboxId);

            await Run(source.Id, "echo after > /root/after.txt");
            foreach (var c in branch.Children)
            {
                Assert.Equal(branch.Snapshot.Id, c.SnapshotId);
                Assert.Equal("before\n", await Run(c.Id, "cat /root/before.txt"));
                Assert.Equal("no", (await Run(c.Id, "test -e /root/after.txt && echo yes || echo no")).Trim());
                // The processes kept running: the counter moves and the shell rewrites its secret.
                var a = await Counter(c.Id);
                await Run(c.Id, "rm -f /tmp/secret");
                await Task.Delay(1500);
                Assert.True(await Counter(c.Id) > a, "the counter stopped in the child");
                Assert.Equal("kept-in-ram\n", await Run(c.Id, "cat /tmp/secret"));
                Assert.Equal(c.Id + "\n", await Run(c.Id, "hostname"));
            }
            var s0 = await Counter(source.Id);
            await Task.Delay(1000);
            Assert.True(await Counter(source.Id) > s0, "the counter stopped in the source");

            // Divergence: a child's write is private to it.
            await Run(branch.Children[0].Id, "echo mine > /root/child0.txt");
            Assert.Equal("no", (await Run(branch.Children[1].Id, "test -e /root/child0.txt && echo yes || echo no")).Trim());
            Assert.Equal("no", (await Run(source.Id, "test -e /root/child0.txt && echo yes || echo no")).Trim());
        }
        finally { await DeleteAll(cleanup); }
    }

    [Fact]
    public async Task Children_are_not_clones_randomness_clock_and_identity_differ()
    {
        var source = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var cleanup = new List<string> { source.Id };
        try
        {
            var branch = await Client.BranchAsync(source.Id, new BranchRequest
            {
                Count = 10,
                Children = [new BranchChild { Env = new() { ["CHILD_ROLE"] = "leader" } }],
            });
            cleanup.AddRange(branch.Children.Select(c => c.Id));
            var uuids = new HashSet<string>();
            foreach (var c in branch.Children)
            {
                // The guest's clock is read inside the exec, so it must fall between the host's clock before the request
                // and after the answer (a busy host can take seconds for the round trip), give or take a second.
                var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                var outp = await Run(c.Id, "cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1; date +%s");
                var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                var lines = outp.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(uuids.Add(lines[0] + lines[1]), $"child {c.Id} produced the same random bytes as a sibling");
                var guestNow = long.Parse(lines[^1].Trim());
                Assert.InRange(guestNow, before - 1, after + 1);
            }
            Assert.Equal("leader\n", await Run(branch.Children[0].Id, "echo $CHILD_ROLE"));
            Assert.Equal("\n", await Run(branch.Children[1].Id, "echo $CHILD_ROLE"));
        }
        finally { await DeleteAll(cleanup); }
    }

    [Fact]
    public async Task Twenty_pause_resume_cycles_keep_every_file_and_the_in_memory_counter()
    {
        var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        try
        {
            // n lives only in this shell's memory; USR1 bumps it and reports it.
            await Run(sb.Id, "setsid sh -c 'n=0; trap \"n=\\$((n+1)); echo \\$n > /tmp/n\" USR1; echo $$ > /tmp/bumper.pid; while true; do sleep 0.1; done' >/dev/null 2>&1 &");
            await Task.Delay(500);
            for (var i = 1; i <= 20; i++)
            {
                await Run(sb.Id, $"echo cycle-{i} > /root/cycle-{i}.txt; kill -USR1 $(cat /tmp/bumper.pid)");
                await Task.Delay(300);
                Assert.Equal($"{i}\n", await Run(sb.Id, "cat /tmp/n"));

                var paused = await Client.PauseAsync(sb.Id);
                Assert.Equal(SandboxStates.Paused, paused.State);
                var ex = await Assert.ThrowsAsync<BoughApiException>(() => Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["true"] }));
                Assert.Equal(409, ex.Status);
                var resumed = await Client.ResumeAsync(sb.Id);
                Assert.Equal(SandboxStates.Running, resumed.State);
                Assert.Equal(sb.Id, resumed.Id);

                var files = await Run(sb.Id, "cat /root/cycle-*.txt | sort -t- -k2 -n | tr '\\n' ' '");
                Assert.Equal(string.Join(' ', Enumerable.Range(1, i).Select(k => $"cycle-{k}")) + " ", files);
                Assert.Equal($"{i}\n", await Run(sb.Id, "cat /tmp/n"));
            }

            // Twenty pause snapshots exist, but only the one the VM maps keeps a memory image.
            var pauses = (await Client.ListSnapshotsAsync()).Where(s => s.SourceSandboxId == sb.Id && s.Kind == "pause").ToList();
            Assert.Equal(20, pauses.Count);
            var images = pauses.Count(p => File.Exists(Path.Combine(f.Daemon.DataDir, "snapshots", p.Id, "memory.img")));
            Assert.Equal(1, images);

            // Deleting the sandbox takes its pause snapshots with it.
            await Client.DeleteSandboxAsync(sb.Id);
            Assert.DoesNotContain(await Client.ListSnapshotsAsync(), s => s.SourceSandboxId == sb.Id && s.Kind == "pause");
            Assert.All(pauses, p => Assert.False(Directory.Exists(Path.Combine(f.Daemon.DataDir, "snapshots", p.Id))));
        }
        finally { await DeleteAll([sb.Id]); }
    }

    [Fact]
    public async Task A_chain_of_five_compacts_into_a_standalone_snapshot()
    {
        // Cold: a sandbox restored from its image's boot snapshot would put that snapshot at the root of the chain.
        var current = await Client.CreateSandboxAsync(new CreateSandboxRequest { ColdBoot = true });
        var sandboxes = new List<string> { current.Id };
        var chain = new List<Snapshot>();
        try
        {
            for (var depth = 1; depth <= 5; depth++)
            {
                await Run(current.Id, $"echo generation-{depth} > /root/gen-{depth}.txt");
                var snap = await Client.CreateSnapshotAsync(current.Id, $"chain-{Guid.NewGuid():N}-{depth}");
                chain.Add(snap);
                Assert.Equal(depth, snap.Depth);
                var next = (await Client.CreateSandboxesFromSnapshotAsync(snap.Id, 1))[0];
                sandboxes.Add(next.Id);
                current = next;
            }
            var info = await Client.GetSnapshotAsync(chain[^1].Id);
            Assert.Equal(chain.Take(4).Select(s => s.Id), info.Ancestors);

            var compact = await Client.CompactSnapshotAsync(chain[^1].Id);
            Assert.Null(compact.ParentId);
            Assert.Equal(1, compact.Depth);

            // Remove everything the chain consisted of.
            await DeleteAll(sandboxes);
            sandboxes.Clear();
            await Client.DeleteSnapshotAsync(chain[0].Id, cascade: true);
            foreach (var s in chain)
                Assert.Equal(404, (await Assert.ThrowsAsync<BoughApiException>(() => Client.GetSnapshotAsync(s.Id))).Status);

            var child = (await Client.CreateSandboxesFromSnapshotAsync(compact.Id, 1))[0];
            sandboxes.Add(child.Id);
            var content = await Run(child.Id, "cat /root/gen-*.txt");
            Assert.Equal(string.Concat(Enumerable.Range(1, 5).Select(d => $"generation-{d}\n")), content);
            await DeleteAll(sandboxes);
            sandboxes.Clear();
            await Client.DeleteSnapshotAsync(compact.Id);
        }
        finally { await DeleteAll(sandboxes); }
    }

    [Fact]
    public async Task Concurrent_branches_of_one_and_of_five_sandboxes()
    {
        var boxes = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Client.CreateSandboxAsync(new CreateSandboxRequest())));
        var cleanup = boxes.Select(b => b.Id).ToList();
        try
        {
            // Two branches of one sandbox at once: both succeed (one waits) or the loser gets a
            // 409 that names the sandbox and the operation in progress.
            var two = await Task.WhenAll(Enumerable.Range(0, 2).Select(async _ =>
            {
                try { return (Result: await Client.BranchAsync(boxes[0].Id, new BranchRequest()), Error: (BoughApiException?)null); }
                catch (BoughApiException e) { return (Result: (BranchResult?)null, Error: e); }
            }));
            Assert.Contains(two, t => t.Result is not null);
            foreach (var t in two)
            {
                if (t.Result is { } r) cleanup.AddRange(r.Children.Select(c => c.Id));
                else
                {
                    Assert.Equal(409, t.Error!.Status);
                    Assert.Contains(boxes[0].Id, t.Error.Detail);
                    Assert.Contains("branch", t.Error.Detail);
                }
            }

            // Five sandboxes branched in parallel all succeed, and exec keeps working meanwhile.
            var execDuring = Client.ExecAsync(f.Primary.Id, new ExecRequest { Cmd = ["echo", "alive"] });
            var five = await Task.WhenAll(boxes.Select(b => Client.BranchAsync(b.Id, new BranchRequest())));
            cleanup.AddRange(five.SelectMany(r => r.Children.Select(c => c.Id)));
            Assert.Equal("alive\n", (await execDuring).Stdout);
            Assert.Equal(5, five.Select(r => r.Snapshot.Id).Distinct().Count());
            Assert.Equal(5, five.Select(r => r.Snapshot.Tag).Distinct().Count());
        }
        finally { await DeleteAll(cleanup); }
    }

    [Fact]
    public async Task Bad_snapshot_requests_get_clear_errors()
    {
        var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var cleanup = new List<string> { sb.Id };
        try
        {
            foreach (var count in new[] { 0, 101 })
            {
                using var r = await Problems.PostJsonTextAsync(f.Daemon.Http, $"/v1/sandboxes/{sb.Id}/branch", $"{{\"count\": {count}}}");
                Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
                Assert.Contains("count", (await Problems.ReadAsync(r)).Detail);
            }

            using (var r = await Problems.PostJsonTextAsync(f.Daemon.Http, "/v1/sandboxes", "{\"snapshot\": \"no-such-snapshot\"}"))
            {
                Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
                Assert.Equal(ErrorCodes.SnapshotNotFound, (await Problems.ReadAsync(r)).Code);
            }

            var tag = $"taken-{Guid.NewGuid():N}";
            var snap = await Client.CreateSnapshotAsync(sb.Id, tag);
            var dup = await Assert.ThrowsAsync<BoughApiException>(() => Client.CreateSnapshotAsync(sb.Id, tag));
            Assert.Equal(409, dup.Status);
            Assert.Equal(ErrorCodes.TagExists, dup.Code);

            // The source's live disk is layered on its newest snapshot: that one stays.
            var sourceUses = await Assert.ThrowsAsync<BoughApiException>(() => Client.DeleteSnapshotAsync(snap.Id));
            Assert.Equal(409, sourceUses.Status);
            Assert.Contains(sb.Id, sourceUses.Detail);

            var child = (await Client.CreateSandboxesFromSnapshotAsync(tag, 1))[0];
            cleanup.Add(child.Id);
            var inUse = await Assert.ThrowsAsync<BoughApiException>(() => Client.DeleteSnapshotAsync(snap.Id));
            Assert.Equal(409, inUse.Status);
            Assert.Contains(child.Id, inUse.Detail);

            await Client.PauseAsync(sb.Id);
            var pausedBranch = await Assert.ThrowsAsync<BoughApiException>(() => Client.BranchAsync(sb.Id, new BranchRequest()));
            Assert.Equal(409, pausedBranch.Status);
            Assert.Contains("paused", pausedBranch.Detail);

            // Nothing above disturbed the other sandboxes.
            Assert.Equal("ok\n", (await Client.ExecAsync(f.Primary.Id, new ExecRequest { Cmd = ["echo", "ok"] })).Stdout);
        }
        finally { await DeleteAll(cleanup); }
    }
}
