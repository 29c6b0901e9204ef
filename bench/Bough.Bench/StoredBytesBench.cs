using System.Globalization;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Bench;

/// <summary>
/// Stored bytes per capture against the bytes that changed: a sandbox writes K MiB of random data (incompressible,
/// never a duplicate of a parent page) into guest tmpfs between two captures; the second capture's own layers
/// (memory + disk) should hold about K MiB and little else. The previous file is removed first, so guest tmpfs never
/// holds more than one (keeping them all, the 64 MiB step nearly filled a 256 MiB guest and its agent went away).
/// </summary>
public static class StoredBytesBench
{
    /// <param name="dataDir">The daemon's data directory, when the bench may read it: each capture's <c>snapshot.json</c> then
    /// also gives the pages the guest wrote since the previous capture (kernel and agent included), for stored / changed.</param>
    public static async Task RunAsync(BoughClient client, int runs, int[] sizesMiB, string? dataDir = null)
    {
        Console.WriteLine();
        Console.WriteLine("## stored bytes per capture vs bytes written since the previous capture (random data in guest tmpfs)");
        var sb = await client.CreateSandboxAsync(new CreateSandboxRequest());
        var snapshots = new List<string>();
        try
        {
            await Exec(client, sb.Id, "mkdir -p /run/k && mount -t tmpfs -o size=1g tmpfs /run/k");
            snapshots.Add((await client.CreateSnapshotAsync(sb.Id)).Id); // the baseline: what the boot and the mount wrote
            foreach (var k in sizesMiB)
            {
                var ratios = new List<double>();
                var storedMiB = new List<double>();
                var pauses = new List<double>();
                var changedMiB = new List<double>();
                var perChanged = new List<double>();
                for (var r = 0; r < runs; r++)
                {
                    await Exec(client, sb.Id, string.Create(CultureInfo.InvariantCulture,
                        $"rm -f /run/k/*; head -c {k * 1048576} /dev/urandom > /run/k/f{k}-{r}"));
                    var snap = await client.CreateSnapshotAsync(sb.Id);
                    snapshots.Add(snap.Id);
                    var mib = (snap.MemoryBytes + snap.DiskBytes) / 1048576.0;
                    storedMiB.Add(mib);
                    ratios.Add(mib / k);
                    pauses.Add(snap.PauseMs ?? 0);
                    if (dataDir is not null && ChangedPages(dataDir, snap.Id) is { } pages)
                    {
                        changedMiB.Add(pages * 4096 / 1048576.0);
                        perChanged.Add(snap.MemoryBytes / (pages * 4096.0));
                    }
                }
                Stats.Print($"K={k} MiB written: stored MiB (memory + disk layer)", storedMiB);
                Stats.Print($"K={k} MiB written: stored / written", ratios);
                Stats.Print($"K={k} MiB written: pauseMs", pauses);
                if (changedMiB.Count > 0)
                {
                    Stats.Print($"K={k} MiB written: guest pages written since the previous capture (MiB)", changedMiB);
                    Stats.Print($"K={k} MiB written: stored memory / guest pages written", perChanged);
                }
            }
        }
        finally
        {
            try { await client.DeleteSandboxAsync(sb.Id); } catch (BoughApiException) { }
            foreach (var id in Enumerable.Reverse(snapshots))
                try { await client.DeleteSnapshotAsync(id); } catch (BoughApiException) { }
        }
    }

    /// <summary>The capture's <c>changedPages</c> (written pages, for a tracked capture), or null when it is not there to read.</summary>
    private static long? ChangedPages(string dataDir, string snapshotId)
    {
        var path = Path.Combine(dataDir, "snapshots", snapshotId, "snapshot.json");
        if (!File.Exists(path)) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.TryGetProperty("changedPages", out var v) ? v.GetInt64() : null;
    }

    private static async Task Exec(BoughClient client, string id, string script)
    {
        var r = await client.ExecAsync(id, new ExecRequest { Cmd = ["sh", "-c", script] });
        if (r.ExitCode != 0) throw new InvalidOperationException($"'{script}' failed in {id}: {r.Stderr}");
    }
}
