// Bough benchmark harness. Talks to a running daemon on this machine (it reads QEMU's
// /proc entries for memory figures) and prints medians and spread over repeated runs.
//
//   dotnet run -c Release --project bench/Bough.Bench -- [--url URL] [--runs N] [--suite core|snapshots|images [--recipe]|boot|fanout [--fanout 1,5,10,20] [--source-memory MiB] [--idle-at N] [--reps N]|stored [--sizes 4,16,64] [--data-dir DIR]]
//   dotnet run -c Release --project bench/Bough.Bench -- --suite tracking [--runs N] [--data-dir DIR]   (no daemon; root)
//
// Results are recorded in docs/benchmarks.md with the machine and the command.
using System.Diagnostics;
using System.Security.Cryptography;
using Bough.Bench;
using Bough.Client;
using Bough.Contracts;

if (Arg("--suite") == "tracking" && OperatingSystem.IsLinux())
{
    // Drives QEMU through the libraries: needs the guest kernel and base image in DIR (built there if missing).
    Console.WriteLine($"# Bough bench (tracking), {Environment.ProcessorCount} cpus, {Environment.OSVersion}, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z");
    await TrackingBench.RunAsync(Arg("--data-dir") ?? "/var/tmp/bough-test-cache/data", int.Parse(Arg("--runs") ?? "5"));
    return;
}

var url = Arg("--url") ?? Environment.GetEnvironmentVariable("BOUGH_URL") ?? "http://127.0.0.1:7878";
var runs = int.Parse(Arg("--runs") ?? "10");
var suite = Arg("--suite") ?? "core";
var client = new BoughClient(new Uri(url));
var version = await client.GetVersionAsync();
Console.WriteLine($"# Bough bench ({suite}) against {url} (bough {version.Version}, accel {version.Accel}), runs={runs}");
Console.WriteLine($"# host: {Environment.ProcessorCount} cpus, {Environment.OSVersion}, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z");
if (suite == "images")
{
    await ImageBench.RunAsync(client, runs, args.Contains("--recipe"));
    return;
}
if (suite is "boot" or "fanout")
{
    if (suite == "boot")
    {
        await BootBench.CreatesAsync(client, runs);
        await BootBench.FirstCreateAsync(client, Math.Max(2, runs / 3));
    }
    await BootBench.FanOutAsync(client, (Arg("--fanout") ?? "1,5,10,20").Split(',').Select(int.Parse).ToArray(),
        Arg("--reps") is { } reps ? int.Parse(reps) : Math.Max(2, runs / 3),
        Arg("--source-memory") is { } mem ? int.Parse(mem) : null, int.Parse(Arg("--idle-at") ?? "20"));
    return;
}
if (suite == "stored")
{
    await StoredBytesBench.RunAsync(client, runs, (Arg("--sizes") ?? "4,16,64").Split(',').Select(int.Parse).ToArray(), Arg("--data-dir"));
    return;
}
if (suite == "snapshots")
{
    await SnapshotBench.RunAsync(client, runs, Arg("--fanout") ?? "1,10,50");
    return;
}

// 1. Cold create -> first exec answered.
var cold = new List<double>();
for (var i = 0; i < runs; i++)
{
    var sw = Stopwatch.StartNew();
    var sb = await client.CreateSandboxAsync(new CreateSandboxRequest());
    var r = await client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["true"] });
    cold.Add(sw.Elapsed.TotalMilliseconds);
    if (r.ExitCode != 0) throw new InvalidOperationException("true failed");
    await client.DeleteSandboxAsync(sb.Id);
}
Stats.Print("cold create -> first exec answered (ms)", cold);

// One sandbox for the rest.
var box = await client.CreateSandboxAsync(new CreateSandboxRequest());
try
{
    // 2. Exec round trip of `true`.
    var execs = new List<double>();
    for (var i = 0; i < Math.Max(runs * 5, 50); i++)
    {
        var sw = Stopwatch.StartNew();
        await client.ExecAsync(box.Id, new ExecRequest { Cmd = ["true"] });
        execs.Add(sw.Elapsed.TotalMilliseconds);
    }
    Stats.Print("exec round trip of `true` (ms)", execs);

    // 3. File upload/download throughput (64 MiB random).
    var data = RandomNumberGenerator.GetBytes(64 * 1024 * 1024);
    var up = new List<double>();
    var down = new List<double>();
    for (var i = 0; i < Math.Min(runs, 5); i++)
    {
        var sw = Stopwatch.StartNew();
        await client.UploadFileAsync(box.Id, "/root/bench.bin", new MemoryStream(data));
        up.Add(64 / sw.Elapsed.TotalSeconds);
        sw.Restart();
        using var sink = new MemoryStream(data.Length);
        await client.DownloadFileAsync(box.Id, "/root/bench.bin", sink);
        down.Add(64 / sw.Elapsed.TotalSeconds);
        if (sink.Length != data.Length) throw new InvalidOperationException("short download");
    }
    Stats.Print("file upload, 64 MiB (MiB/s)", up);
    Stats.Print("file download, 64 MiB (MiB/s)", down);
    await client.DeleteFileAsync(box.Id, "/root/bench.bin");

    // 4. PSS of one idle sandbox's QEMU, after it settles.
    await Task.Delay(TimeSpan.FromSeconds(5));
    var pid = (await client.GetSandboxAsync(box.Id)).Pid ?? throw new InvalidOperationException("no pid");
    var pss = new List<double>();
    for (var i = 0; i < 5; i++) { pss.Add(Proc.PssKiB(pid) / 1024.0); await Task.Delay(500); }
    Stats.Print("PSS of one idle sandbox's QEMU (MiB)", pss);
}
finally
{
    await client.DeleteSandboxAsync(box.Id);
}

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
