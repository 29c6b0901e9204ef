using System.Diagnostics;
using System.Security.Cryptography;
using Bough.Client;
using Bough.Contracts;
using Bough.TestSupport.Registry;

namespace Bough.Bench;

/// <summary>
/// Images and templates: image build time (pull with every blob cached, so the time is flatten +
/// mkfs + qcow2), pull throughput from a local registry (fresh random layers every run, so nothing
/// is cached), and create-from-template against a cold boot of the same image, interleaved run by
/// run so both see the same machine load. Starts its own docker-registry on localhost; the daemon
/// must run on this machine.
/// </summary>
public static class ImageBench
{
    private const int HttpPort = 8080;

    public static async Task RunAsync(BoughClient client, int runs, bool withRecipe)
    {
        using var registry = await LocalRegistry.StartAsync();
        var work = Directory.CreateTempSubdirectory("bough-bench-images-");
        try
        {
            await BuildTimeAsync(client, registry, work.FullName, runs);
            await PullThroughputAsync(client, registry, work.FullName, Math.Min(runs, 5), layerMiB: 16, layers: 3);
            await TemplateVersusColdAsync(client, registry, work.FullName, runs);
            if (withRecipe) await RecipeAsync(client);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Busybox image plus a web root for httpd, pushed under <paramref name="repo"/>:1.</summary>
    private static async Task<string> PushBusyboxAsync(LocalRegistry registry, string work, string repo, params LayerSpec[] extra)
    {
        var dir = Path.Combine(work, repo.Replace('/', '_'));
        var layout = new OciLayoutBuilder(dir);
        var www = new LayerSpec([TarItem.Dir("www"), TarItem.File("www/index.html", "hello from a template\n")]);
        var image = layout.AddImage(TestImages.Busybox([www, .. extra]) with { User = null, WorkingDir = "/" });
        layout.Tag(image.Manifest, "1");
        var reference = $"{registry.Host}/{repo}:1";
        await Skopeo.PushAsync(dir, "1", reference);
        return reference;
    }

    private static async Task BuildTimeAsync(BoughClient client, LocalRegistry registry, string work, int runs)
    {
        // Same blobs under a new name every run: the blob cache answers, the image is built anew.
        var first = await PushBusyboxAsync(registry, work, "bench/build");
        await client.PullImageAsync(first, insecure: true); // warms the blob cache
        await client.DeleteImageAsync(first);
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var reference = $"{registry.Host}/bench/build{i}:1";
            await Skopeo.PushAsync(Path.Combine(work, "bench_build"), "1", reference);
            var sw = Stopwatch.StartNew();
            var image = await client.PullImageAsync(reference, insecure: true);
            times.Add(sw.Elapsed.TotalMilliseconds);
            await client.DeleteImageAsync(image.Name);
        }
        Stats.Print("image build, busybox (blobs cached) (ms)", times);
    }

    private static async Task PullThroughputAsync(BoughClient client, LocalRegistry registry, string work, int runs, int layerMiB, int layers)
    {
        var rates = new List<double>();
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            // Random bytes do not compress: the layer blobs are as big as their content.
            var extra = Enumerable.Range(0, layers).Select(l => new LayerSpec(
                [TarItem.File($"data/blob{l}.bin", RandomNumberGenerator.GetBytes(layerMiB << 20), (UnixFileMode)0b110_100_100)])).ToArray();
            var reference = await PushBusyboxAsync(registry, work, $"bench/pull{i}", extra);
            var sw = Stopwatch.StartNew();
            var image = await client.PullImageAsync(reference, insecure: true);
            var seconds = sw.Elapsed.TotalSeconds;
            times.Add(seconds * 1000);
            rates.Add(layerMiB * layers / seconds);
            await client.DeleteImageAsync(image.Name);
            Directory.Delete(Path.Combine(work, $"bench_pull{i}"), recursive: true);
        }
        Stats.Print($"pull {layers}x{layerMiB} MiB random layers, end to end (ms)", times);
        Stats.Print("pull throughput incl. flatten + build (MiB/s)", rates);
    }

    private static async Task TemplateVersusColdAsync(BoughClient client, LocalRegistry registry, string work, int runs)
    {
        var reference = await PushBusyboxAsync(registry, work, "bench/httpd");
        var image = await client.PullImageAsync(reference, insecure: true);
        string[] start = ["/bin/busybox", "httpd", "-f", "-p", HttpPort.ToString(), "-h", "/www"];
        string[] ready = ["/bin/busybox", "wget", "-q", "-O", "/tmp/r", $"http://127.0.0.1:{HttpPort}/"];
        var name = "bench-httpd-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        var sw = Stopwatch.StartNew();
        var template = await client.CreateTemplateAsync(new CreateTemplateRequest { Name = name, Image = image.Name, Start = [.. start], Ready = [.. ready] });
        Console.WriteLine($"{"template create (boot + start + ready + snapshot) (ms)",-48} {sw.Elapsed.TotalMilliseconds,9:F1}  (warmup {template.WarmupMs} ms)");
        try
        {
            var fromTemplate = new List<double>();
            var cold = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                // Both paths end when the web server inside answers a request.
                sw.Restart();
                var forked = await client.CreateSandboxAsync(new CreateSandboxRequest { Template = name });
                var r = await client.ExecAsync(forked.Id, new ExecRequest { Cmd = [.. ready] });
                fromTemplate.Add(sw.Elapsed.TotalMilliseconds);
                if (r.ExitCode != 0) throw new InvalidOperationException($"template child's server did not answer: {r.Stderr}");
                await client.DeleteSandboxAsync(forked.Id);

                sw.Restart();
                var booted = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = image.Name });
                await client.ExecAsync(booted.Id, new ExecRequest
                {
                    Cmd = ["/.bough/bin/busybox", "sh", "-c", "setsid \"$@\" >/dev/null 2>&1 </dev/null &", "sh", .. start],
                });
                while ((await client.ExecAsync(booted.Id, new ExecRequest { Cmd = [.. ready] })).ExitCode != 0)
                    await Task.Delay(50);
                cold.Add(sw.Elapsed.TotalMilliseconds);
                await client.DeleteSandboxAsync(booted.Id);
            }
            Stats.Print("create from template -> server answers (ms)", fromTemplate);
            Stats.Print("cold boot + start -> server answers (ms)", cold);
            Console.WriteLine($"{"ratio template/cold (p50)",-48} {Stats.Percentile(fromTemplate, 50) / Stats.Percentile(cold, 50):F3}");

            // Fan-out: 10 children of the template in one call.
            sw.Restart();
            var children = await client.CreateSandboxesFromTemplateAsync(name, 10);
            var all = await Task.WhenAll(children.Select(c => client.ExecAsync(c.Id, new ExecRequest { Cmd = [.. ready] })));
            Console.WriteLine($"{"10 from template, all servers answered (ms)",-48} {sw.Elapsed.TotalMilliseconds,9:F1}  ({all.Count(x => x.ExitCode == 0)}/10 ok)");
            await Task.WhenAll(children.Select(c => client.DeleteSandboxAsync(c.Id)));
        }
        finally
        {
            await client.DeleteTemplateAsync(name);
            await client.DeleteImageAsync(image.Name);
        }
    }

    private static async Task RecipeAsync(BoughClient client)
    {
        var name = "bench-debian-python-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        var sw = Stopwatch.StartNew();
        var image = await client.BuildImageAsync("debian-python", name);
        Console.WriteLine($"{"image build, debian-python recipe (s)",-48} {sw.Elapsed.TotalSeconds,9:F1}  ({image.ContentBytes >> 20} MiB content)");
        await client.DeleteImageAsync(image.Name);
    }
}
