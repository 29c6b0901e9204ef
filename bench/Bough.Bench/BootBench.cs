using System.Diagnostics;
using System.Globalization;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Bench;

/// <summary>
/// Every create is a restore, and fan-out: a default create (restored from the boot snapshot of its shape)
/// against a forced cold boot of the same image in the same run; what the first create of a shape pays for
/// publishing; and N children of one branch until every one answers, with the CPU each child's QEMU used.
/// </summary>
public static class BootBench
{
    /// <summary>Below the daemon's limit of buffered execs in flight (32).</summary>
    private const int MaxConcurrentExecs = 24;

    /// <summary>Linux's USER_HZ: /proc/PID/stat counts CPU time in these ticks.</summary>
    private const double TicksPerSecond = 100;

    public static async Task CreatesAsync(BoughClient client, int runs)
    {
        Console.WriteLine();
        Console.WriteLine("## default create (restored from the boot snapshot) vs coldBoot create, → first exec answered");
        // The shape's boot snapshot, if it is not there yet.
        var warm = await client.CreateSandboxAsync(new CreateSandboxRequest());
        await Exec(client, warm.Id, "true");
        await client.DeleteSandboxAsync(warm.Id);

        var restored = new List<double>();
        var cold = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            // Alternate which goes first, so drift in the machine's load does not favour one.
            foreach (var coldBoot in r % 2 == 0 ? new[] { false, true } : [true, false])
            {
                var (ms, sb) = await CreateToExecAsync(client, new CreateSandboxRequest { ColdBoot = coldBoot ? true : null });
                if (sb.Boot != (coldBoot ? SandboxBoots.Cold : SandboxBoots.Restored))
                    throw new InvalidOperationException($"sandbox {sb.Id} started '{sb.Boot}', expected {(coldBoot ? "cold" : "restored")}");
                (coldBoot ? cold : restored).Add(ms);
                await client.DeleteSandboxAsync(sb.Id);
            }
        }
        Stats.Print("default create (restored) -> first exec (ms)", restored);
        Stats.Print("coldBoot create -> first exec (ms)", cold);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio restored / cold (p50): {Stats.Percentile(restored, 50) / Stats.Percentile(cold, 50):F3}"));
    }

    /// <summary>The first create of a shape publishes its boot snapshot: what that costs against a plain cold boot of the shape.</summary>
    public static async Task FirstCreateAsync(BoughClient client, int reps)
    {
        Console.WriteLine();
        Console.WriteLine("## first create of a shape (cold boot + publishing the boot snapshot) vs coldBoot of the same shape");
        var publishing = new List<double>();
        var cold = new List<double>();
        var pauses = new List<double>();
        var stored = new List<double>();
        for (var r = 0; r < reps; r++)
        {
            var memory = 320 + 16 * r + Random.Shared.Next(0, 64) * 16; // a shape no earlier run made
            var (coldMs, c) = await CreateToExecAsync(client, new CreateSandboxRequest { MemoryMiB = memory, ColdBoot = true });
            await client.DeleteSandboxAsync(c.Id);
            var (firstMs, first) = await CreateToExecAsync(client, new CreateSandboxRequest { MemoryMiB = memory });
            await client.DeleteSandboxAsync(first.Id);
            cold.Add(coldMs);
            publishing.Add(firstMs);
            foreach (var boot in (await client.ListSnapshotsAsync()).Where(s => s.Kind == "boot" && s.SourceSandboxId == first.Id))
            {
                pauses.Add(boot.PauseMs ?? 0);
                stored.Add(boot.MemoryBytes / 1048576.0);
                await client.DeleteSnapshotAsync(boot.Id);
            }
        }
        Stats.Print("first create of a shape -> first exec (ms)", publishing);
        Stats.Print("coldBoot of that shape -> first exec (ms)", cold);
        Stats.Print("boot snapshot capture: pauseMs", pauses);
        Stats.Print("boot snapshot capture: stored MiB", stored);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio first create / cold (p50): {Stats.Percentile(publishing, 50) / Stats.Percentile(cold, 50):F3}"));
    }

    /// <summary>Branch N children of one source; time until every child answered an exec, and CPU-seconds of each child's QEMU by then.</summary>
    /// <param name="sourceMemoryMiB">The source's memory (children have the same): smaller lets N=100 pass admission on a small host.</param>
    /// <param name="idleAt">The N whose children are also measured idle (<see cref="IdleAsync"/>).</param>
    public static async Task FanOutAsync(BoughClient client, int[] sizes, int reps, int? sourceMemoryMiB = null, int idleAt = 20)
    {
        Console.WriteLine();
        Console.WriteLine("## branch fan-out: until every child answered `true`; CPU-seconds per child (its QEMU's utime+stime by then)" +
                          (sourceMemoryMiB is { } m ? $"; {m} MiB guests" : ""));
        // The yardstick, in the same run: a cold boot of the same image and memory to its first answer.
        var cold = new List<double>();
        for (var r = 0; r < reps; r++)
        {
            var (ms, c) = await CreateToExecAsync(client, new CreateSandboxRequest { MemoryMiB = sourceMemoryMiB, ColdBoot = true });
            await client.DeleteSandboxAsync(c.Id);
            cold.Add(ms);
        }
        Stats.Print("coldBoot create -> first exec (ms), the yardstick", cold);
        var source = await client.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = sourceMemoryMiB });
        try
        {
            // A process the children carry on with; it sleeps, so the idle figures are the VM's own cost.
            await Exec(client, source.Id, "setsid sleep 1000000 >/dev/null 2>&1 &");
            foreach (var n in sizes)
            {
                var total = new List<double>();
                var call = new List<double>();
                var cpu = new List<double>();
                for (var r = 0; r < (n >= 50 ? 1 : reps); r++)
                {
                    var sw = Stopwatch.StartNew();
                    BranchResult branch;
                    try { branch = await client.BranchAsync(source.Id, new BranchRequest { Count = n }); }
                    catch (BoughApiException e)
                    {
                        Console.WriteLine($"branch N={n}: failed after {sw.Elapsed.TotalSeconds:F0} s: {e.Status} {e.Code}: {e.Message.Split('\n')[0]}");
                        continue;
                    }
                    call.Add(sw.Elapsed.TotalMilliseconds);
                    // At most MaxConcurrentExecs at a time: the daemon refuses more buffered execs than that (too_many_execs).
                    await Parallel.ForEachAsync(branch.Children, new ParallelOptions { MaxDegreeOfParallelism = MaxConcurrentExecs },
                        async (c, _) => await Exec(client, c.Id, "true"));
                    total.Add(sw.Elapsed.TotalMilliseconds);
                    cpu.Add(branch.Children.Sum(c => CpuSeconds(c.Pid!.Value)) / n);
                    if (n == idleAt && r == 0) await IdleAsync(client, branch.Children);
                    await Task.WhenAll(branch.Children.Select(c => client.DeleteSandboxAsync(c.Id)));
                }
                if (total.Count == 0) continue;
                Stats.Print($"branch N={n}: all children answered (ms)", total);
                Stats.Print($"branch N={n}: the branch call itself (ms)", call);
                Stats.Print($"branch N={n}: CPU-seconds per child", cpu);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"branch N={n}: all answered / one cold boot (p50): {Stats.Percentile(total, 50) / Stats.Percentile(cold, 50):F2}"));
            }
        }
        finally
        {
            try { await client.DeleteSandboxAsync(source.Id); } catch (BoughApiException) { }
        }
    }

    /// <summary>
    /// What idle children cost: after they settle (nothing runs in them but the agent and the sleeping process they
    /// inherited), each QEMU's PSS (shared snapshot pages split between the siblings) and its share of a
    /// core over a measured window.
    /// </summary>
    private static async Task IdleAsync(BoughClient client, IReadOnlyList<Sandbox> children)
    {
        var pids = children.Select(c => c.Pid!.Value).ToArray();
        var settle = TimeSpan.FromSeconds(20);
        var window = TimeSpan.FromSeconds(30);
        await Task.Delay(settle);
        var before = pids.Select(CpuSeconds).ToArray();
        var sw = Stopwatch.StartNew();
        await Task.Delay(window);
        var seconds = sw.Elapsed.TotalSeconds;
        var cpuPct = pids.Select((p, i) => (CpuSeconds(p) - before[i]) / seconds * 100).ToList();
        var pss = pids.Select(p => Proc.PssKiB(p) / 1024.0).ToList();
        Stats.Print($"idle child at N={pids.Length} ({settle.TotalSeconds:F0} s settled, {window.TotalSeconds:F0} s measured): PSS (MiB)", pss);
        Stats.Print($"idle child at N={pids.Length}: CPU (% of a core)", cpuPct);
        await WorkAfterIdleAsync(client, children);
    }

    /// <summary>
    /// What a child's translation cache costs when it is used again: one child at a time (so siblings do not share the
    /// CPU), the same small workload twice, its wall time and its QEMU's CPU-seconds. A cache too small for the code the
    /// guest runs shows up as a second run no cheaper than the first (TCG translated it again).
    /// </summary>
    private static async Task WorkAfterIdleAsync(BoughClient client, IReadOnlyList<Sandbox> children)
    {
        const string Work = "ls -lR /usr/lib >/dev/null; cat /proc/meminfo /proc/cpuinfo | sort | md5sum >/dev/null; ps >/dev/null";
        var firstMs = new List<double>();
        var againMs = new List<double>();
        var firstCpu = new List<double>();
        var againCpu = new List<double>();
        foreach (var c in children)
        {
            foreach (var (ms, cpu) in new[] { (firstMs, firstCpu), (againMs, againCpu) })
            {
                var before = CpuSeconds(c.Pid!.Value);
                var sw = Stopwatch.StartNew();
                await Exec(client, c.Id, Work);
                ms.Add(sw.Elapsed.TotalMilliseconds);
                cpu.Add(CpuSeconds(c.Pid!.Value) - before);
            }
        }
        Stats.Print("after idle, one child at a time: workload (ms)", firstMs);
        Stats.Print("after idle: the same workload again (ms)", againMs);
        Stats.Print("after idle: workload CPU-seconds", firstCpu);
        Stats.Print("after idle: again, CPU-seconds", againCpu);
    }

    private static async Task<(double Ms, Sandbox Sandbox)> CreateToExecAsync(BoughClient client, CreateSandboxRequest request)
    {
        var sw = Stopwatch.StartNew();
        var sb = await client.CreateSandboxAsync(request);
        await Exec(client, sb.Id, "true");
        return (sw.Elapsed.TotalMilliseconds, sb);
    }

    /// <summary>utime + stime of a process (fields 14 and 15 of /proc/PID/stat, after the parenthesised name).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    private static async Task Exec(BoughClient client, string id, string script)
    {
        var r = await client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        if (r.ExitCode != 0) throw new InvalidOperationException($"'{script}' failed in {id}: {r.Stderr}");
    }
}
