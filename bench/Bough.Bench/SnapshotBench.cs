using System.Diagnostics;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Bench;

/// <summary>
/// The snapshot engine's figures, measured side by side in one run: the stop window against
/// guest size and dirtied memory, bytes stored against bytes dirtied, branch fan-out against
/// a cold boot, memory shared between children, and resume latency.
/// </summary>
public static class SnapshotBench
{
    public static async Task RunAsync(BoughClient client, int runs, string fanout)
    {
        await PauseWindowAsync(client, Math.Max(3, runs / 3));
        await FanOutAsync(client, fanout.Split(',').Select(int.Parse).ToArray(), Math.Max(3, runs / 3));
        await ResumeAsync(client, runs);
    }

    /// <summary>
    /// A child started from a snapshot dirties X MiB (random bytes into guest tmpfs), then is
    /// captured: that capture's pauseMs and stored bytes are what scales with X, not guest size.
    /// </summary>
    private static async Task PauseWindowAsync(BoughClient client, int reps)
    {
        Console.WriteLine();
        Console.WriteLine("## stop window (pauseMs) and bytes stored, capture of a child that dirtied X MiB");
        foreach (var mem in new[] { 256, 1024 })
        {
            var source = await client.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = mem });
            try
            {
                var first = await client.CreateSnapshotAsync(source.Id);
                Console.WriteLine($"{mem,5} MiB guest: first capture after boot pauseMs={first.PauseMs} stored={first.MemoryBytes / 1048576.0:F1} MiB (everything the boot touched)");
                foreach (var dirty in new[] { 4, 64 })
                {
                    var pauses = new List<double>();
                    var stored = new List<double>();
                    for (var r = 0; r < reps; r++)
                    {
                        var child = (await client.CreateSandboxesFromSnapshotAsync(first.Id, 1))[0];
                        try
                        {
                            await Exec(client, child.Id, $"head -c {dirty * 1048576} /dev/urandom > /dev/shm/dirty");
                            var snap = await client.CreateSnapshotAsync(child.Id);
                            pauses.Add(snap.PauseMs ?? 0);
                            stored.Add(snap.MemoryBytes / 1048576.0);
                            await client.DeleteSandboxAsync(child.Id); // its snapshot goes with the cascade below
                        }
                        finally { await TryDelete(client, child.Id); }
                    }
                    Stats.Print($"{mem} MiB guest, dirtied {dirty} MiB: pauseMs", pauses);
                    Stats.Print($"{mem} MiB guest, dirtied {dirty} MiB: stored MiB", stored);
                }
                await client.DeleteSandboxAsync(source.Id);
                await client.DeleteSnapshotAsync(first.Id, cascade: true);
            }
            finally { await TryDelete(client, source.Id); }
        }
    }

    /// <summary>Branch N children and wait until every one answers an exec; compare with one cold boot.</summary>
    private static async Task FanOutAsync(BoughClient client, int[] sizes, int reps)
    {
        Console.WriteLine();
        Console.WriteLine("## branch fan-out: time until every child answered an exec, against one cold boot (same run)");
        var cold = new List<double>();
        for (var r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            var sb = await client.CreateSandboxAsync(new CreateSandboxRequest());
            await Exec(client, sb.Id, "true");
            cold.Add(sw.Elapsed.TotalMilliseconds);
            await client.DeleteSandboxAsync(sb.Id);
        }
        Stats.Print("cold boot -> first exec (ms)", cold);

        var source = await client.CreateSandboxAsync(new CreateSandboxRequest());
        string? firstSnapshot = null;
        try
        {
            await Exec(client, source.Id, "setsid sh -c 'while true; do sleep 1; done' >/dev/null 2>&1 &");
            foreach (var n in sizes)
            {
                var times = new List<double>();
                var pauses = new List<double>();
                double perChildPss = 0, totalPss = 0, sumRss = 0;
                for (var r = 0; r < (n >= 50 ? 1 : reps); r++)
                {
                    var sw = Stopwatch.StartNew();
                    var branch = await client.BranchAsync(source.Id, new BranchRequest { Count = n });
                    firstSnapshot ??= branch.Snapshot.Id;
                    await Task.WhenAll(branch.Children.Select(c => Exec(client, c.Id, "true")));
                    times.Add(sw.Elapsed.TotalMilliseconds);
                    pauses.Add(branch.PauseMs);
                    await Task.Delay(2000);
                    var pids = branch.Children.Select(c => c.Pid!.Value).ToList();
                    totalPss = pids.Sum(p => Proc.PssKiB(p)) / 1024.0;
                    sumRss = pids.Sum(p => Proc.RssKiB(p)) / 1024.0;
                    perChildPss = totalPss / n;
                    await Task.WhenAll(branch.Children.Select(c => client.DeleteSandboxAsync(c.Id)));
                }
                Stats.Print($"branch N={n}: all children answered (ms)", times);
                Stats.Print($"branch N={n}: source pauseMs", pauses);
                Console.WriteLine($"branch N={n}: ratio to one cold boot (p50) {Stats.Percentile(times, 50) / Stats.Percentile(cold, 50):F2}; " +
                                  $"PSS per child {perChildPss:F1} MiB, all {n} children {totalPss:F0} MiB (sum of RSS {sumRss:F0} MiB)");
            }
        }
        finally
        {
            await TryDelete(client, source.Id);
            if (firstSnapshot is not null) await client.DeleteSnapshotAsync(firstSnapshot, cascade: true);
        }
    }

    private static async Task ResumeAsync(BoughClient client, int reps)
    {
        Console.WriteLine();
        Console.WriteLine("## pause / resume of one sandbox");
        var sb = await client.CreateSandboxAsync(new CreateSandboxRequest());
        try
        {
            var pause = new List<double>();
            var resume = new List<double>();
            for (var r = 0; r < reps; r++)
            {
                await Exec(client, sb.Id, $"echo {r} > /root/cycle");
                var sw = Stopwatch.StartNew();
                await client.PauseAsync(sb.Id);
                pause.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                await client.ResumeAsync(sb.Id);
                await Exec(client, sb.Id, "true");
                resume.Add(sw.Elapsed.TotalMilliseconds);
            }
            Stats.Print("pause (ms, request to paused)", pause);
            Stats.Print("resume -> first exec answered (ms)", resume);
        }
        finally { await TryDelete(client, sb.Id); }
    }

    private static async Task Exec(BoughClient client, string id, string script)
    {
        var r = await client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        if (r.ExitCode != 0) throw new InvalidOperationException($"'{script}' failed in {id}: {r.Stderr}");
    }

    private static async Task TryDelete(BoughClient client, string id)
    {
        try { await client.DeleteSandboxAsync(id); } catch (BoughApiException) { }
    }
}
