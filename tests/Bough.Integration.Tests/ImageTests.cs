using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Bough.Contracts;
using Bough.TestSupport.Registry;

namespace Bough.Integration.Tests;

/// <summary>OCI images end to end: a real registry (docker-registry + skopeo), the real daemon, real VMs.</summary>
[Collection("daemon")]
public sealed class ImageTests(DaemonFixture f, RegistryFixture reg) : IClassFixture<RegistryFixture>
{
    private HttpClient Http => f.Daemon.Http;

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task Pulled_image_boots_with_its_files_env_workdir_user_and_default_command()
    {
        var (reference, built) = await reg.PushImageAsync(Unique("test/bb") + ":1", TestImages.Busybox(
            new LayerSpec([TarItem.Dir("data"), TarItem.File("data/hello.txt", "from layer 2\n")])));
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;

        var (status, image) = await ImageApi.PullAsync(Http, reference);
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(ImageStates.Ready, image.State);
        Assert.Equal(reference, image.Name);
        Assert.Equal("registry", image.Source);
        Assert.Equal(built.Manifest.Digest, image.Digest);
        Assert.Equal("/home/app", image.Config!.WorkingDir);
        Assert.Equal("app", image.Config.User);
        Assert.Contains("GREETING=hello world", image.Config.Env);
        Assert.Equal(before + 1, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);

        // Same manifest again: 200, nothing new published. Both URL encodings find it.
        var (again, same) = await ImageApi.PullAsync(Http, reference);
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Equal(image.Digest, same.Digest);
        Assert.Equal(before + 1, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        Assert.Equal(reference, (await ImageApi.GetAsync(Http, reference)).Name);
        using (var whole = await Http.GetAsync("/v1/images/" + Uri.EscapeDataString(reference)))
            Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        var list = await Http.GetFromJsonAsync<List<Image>>("/v1/images", ImageApi.Json);
        Assert.Equal("base", list![0].Name);
        Assert.Contains(list, i => i.Name == reference && i.State == ImageStates.Ready);

        var sb = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = reference, Env = new() { ["GREETING"] = "from create" } });
        try
        {
            Assert.Equal(reference, sb.Image);
            Assert.Equal("from layer 2\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/cat", "/data/hello.txt"));
            // Image env applies (PATH=/bin), the create request's env wins over the image's.
            Assert.Equal("/bin|from create\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/sh", "-c", "echo \"$PATH|$GREETING\""));
            Assert.Equal("/home/app\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/sh", "-c", "pwd"));
            Assert.Equal("1000\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/busybox", "id", "-u"));
            var asRoot = await ImageApi.ExecAsync(Http, sb.Id, new ExecRequest { Cmd = ["/bin/busybox", "id", "-u"], User = "root" });
            Assert.Equal("0\n", asRoot.Stdout);
            // No cmd: the image's Cmd runs.
            var dflt = await ImageApi.ExecAsync(Http, sb.Id, new ExecRequest());
            Assert.Equal(0, dflt.ExitCode);
            Assert.Equal("hi\n", dflt.Stdout);

            // In use: 409 naming the sandbox.
            using var busy = await Http.DeleteAsync(ImageApi.Path(reference));
            var p = await Problems.ReadAsync(busy);
            Assert.Equal(409, p.Status);
            Assert.Equal(ErrorCodes.ImageInUse, p.Code);
            Assert.Contains(sb.Id, p.Detail);
        }
        finally { await ImageApi.DeleteSandboxQuietlyAsync(Http, sb.Id); }

        using (var gone = await Http.DeleteAsync(ImageApi.Path(reference)))
            Assert.Equal(HttpStatusCode.NoContent, gone.StatusCode);
        Assert.Equal(before, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        using (var missing = await Http.GetAsync(ImageApi.Path(reference)))
            Assert.Equal(ErrorCodes.ImageNotFound, (await Problems.ReadAsync(missing)).Code);
    }

    [Fact]
    public async Task Multi_arch_index_picks_amd64_and_whiteouts_hide_lower_layer_files()
    {
        BuiltImage? amd64 = null;
        var reference = await reg.PushAsync(Unique("test/multi") + ":1", b =>
        {
            var arm = b.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("arch.txt", "arm64\n")])) with { Architecture = "arm64" });
            amd64 = b.AddImage(TestImages.Busybox(
                new LayerSpec([TarItem.File("arch.txt", "amd64\n"), TarItem.Dir("data"), TarItem.File("data/gone.txt", "x"), TarItem.File("data/keep.txt", "kept\n")]),
                new LayerSpec([TarItem.Whiteout("data/gone.txt")])));
            b.Tag(b.AddIndex(arm, amd64), "t");
        });

        var (_, image) = await ImageApi.PullAsync(Http, reference);
        Assert.Equal(amd64!.Manifest.Digest, image.Digest);
        var sb = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = reference });
        try
        {
            Assert.Equal("amd64\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/cat", "/arch.txt"));
            Assert.Equal("kept\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/cat", "/data/keep.txt"));
            Assert.Equal("absent\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/sh", "-c", "test -e /data/gone.txt && echo present || echo absent"));
            Assert.Equal("", await ImageApi.RunAsync(Http, sb.Id, "/bin/sh", "-c", "ls -a /data | grep wh || true"));
        }
        finally
        {
            await ImageApi.DeleteSandboxQuietlyAsync(Http, sb.Id);
            using var _ = await Http.DeleteAsync(ImageApi.Path(reference));
        }
    }

    [Fact]
    public async Task Unknown_reference_is_404_image_ref_not_found()
    {
        using var r = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = $"{reg.Registry.Host}/nope/never:1", Insecure = true }, ImageApi.Json);
        var p = await Problems.ReadAsync(r);
        Assert.Equal(404, p.Status);
        Assert.Equal(ErrorCodes.ImageRefNotFound, p.Code);

        using var bad = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = "UPPER/Case::bad" }, ImageApi.Json);
        Assert.Equal(ErrorCodes.InvalidRequest, (await Problems.ReadAsync(bad)).Code);
        using var unknown = await Http.GetAsync("/v1/images/never-pulled");
        var nf = await Problems.ReadAsync(unknown);
        Assert.Equal(ErrorCodes.ImageNotFound, nf.Code);
        Assert.Contains("bough pull", nf.Detail);
        using var baseDelete = await Http.DeleteAsync("/v1/images/base");
        Assert.Equal(409, (await Problems.ReadAsync(baseDelete)).Status);
        using var noImage = await Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Image = "never-pulled" }, ImageApi.Json);
        Assert.Equal(ErrorCodes.ImageNotFound, (await Problems.ReadAsync(noImage)).Code);
    }

    [Fact]
    public async Task Corrupted_blob_fails_with_image_corrupt_and_leaves_no_image()
    {
        var (reference, built) = await reg.PushImageAsync(Unique("test/corrupt") + ":1",
            TestImages.Busybox(new LayerSpec([TarItem.File("payload.txt", Unique("payload"))])));
        var blob = reg.Registry.BlobDataPath(built.Layers[^1].Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;

        using var r = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = reference, Insecure = true }, ImageApi.Json);
        var p = await Problems.ReadAsync(r);
        Assert.Equal(ErrorCodes.ImageCorrupt, p.Code);
        Assert.Equal(502, p.Status);

        Assert.Equal(before, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        var failed = await ImageApi.GetAsync(Http, reference);
        Assert.Equal(ImageStates.Failed, failed.State);
        Assert.Equal(ErrorCodes.ImageCorrupt, failed.Error!.Code);
        var list = await Http.GetFromJsonAsync<List<Image>>("/v1/images", ImageApi.Json);
        Assert.DoesNotContain(list!, i => i.Name == reference);
        Assert.Empty(StagingLeftovers());
    }

    [Fact]
    public async Task Layer_escaping_the_root_is_rejected_and_writes_nothing_outside()
    {
        var marker = Unique("bough-escape");
        var (reference, _) = await reg.PushImageAsync(Unique("test/escape") + ":1", TestImages.Busybox(
            new LayerSpec([TarItem.File($"../../../../../../tmp/{marker}", "escaped")])));
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;

        using var r = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = reference, Insecure = true }, ImageApi.Json);
        var p = await Problems.ReadAsync(r);
        Assert.Equal(ErrorCodes.LayerRejected, p.Code);
        Assert.Equal(422, p.Status);
        Assert.False(File.Exists($"/tmp/{marker}"));
        Assert.Empty(Directory.GetFiles(f.Daemon.DataDir, marker, SearchOption.AllDirectories));
        Assert.Equal(before, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        Assert.Empty(StagingLeftovers());
    }

    [Fact]
    public async Task Async_pull_answers_202_and_concurrent_pulls_of_one_ref_coalesce()
    {
        var (reference, built) = await reg.PushImageAsync(Unique("test/async") + ":1",
            TestImages.Busybox(new LayerSpec([TarItem.File("big.bin", new byte[8 << 20])])));
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;

        var (status, pulling) = await ImageApi.PullAsync(Http, reference, async: true);
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(reference, pulling.Name);
        // Joiners while it runs: waiting ones and another background one.
        var joiners = await Task.WhenAll(
            ImageApi.PullAsync(Http, reference),
            ImageApi.PullAsync(Http, reference),
            ImageApi.PullAsync(Http, reference, async: true));
        var ready = await ImageApi.WaitReadyAsync(Http, reference, TimeSpan.FromMinutes(5));
        Assert.Equal(built.Manifest.Digest, ready.Digest);
        foreach (var (s, img) in joiners.Take(2))
        {
            Assert.True(s is HttpStatusCode.Created or HttpStatusCode.OK, $"joined pull answered {s}");
            Assert.Equal(built.Manifest.Digest, img.Digest);
        }
        Assert.Equal(before + 1, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        var list = await Http.GetFromJsonAsync<List<Image>>("/v1/images", ImageApi.Json);
        Assert.Single(list!, i => i.Name == reference);

        using var _ = await Http.DeleteAsync(ImageApi.Path(reference));
    }

    [Fact]
    public async Task Import_of_an_oci_layout_dir_and_of_a_docker_save_tar()
    {
        // Imports read only from the daemon's import directory (<data dir>/import).
        var work = Path.Combine(f.Daemon.DataDir, "import", Unique("it-import"));
        Directory.CreateDirectory(work);
        var layout = Path.Combine(work, "layout");
        var b = new OciLayoutBuilder(layout);
        var img = b.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("origin.txt", "imported\n")])));
        b.Tag(img.Manifest, "v1");
        var name = Unique("imported") + ":v1";

        using (var r = await Http.PostAsJsonAsync("/v1/images/import", new ImportImageRequest { Path = layout, Name = name }, ImageApi.Json))
        {
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
            var image = (await r.Content.ReadFromJsonAsync<Image>(ImageApi.Json))!;
            Assert.Equal(name, image.Name);
            Assert.Equal("archive", image.Source);
            Assert.Equal(img.Manifest.Digest, image.Digest);
        }

        // docker save format, written by skopeo from the same layout, with its own recorded name.
        var tar = Path.Combine(work, "image.tar");
        var recorded = "localhost/" + Unique("saved") + ":2";
        await RunAsync("skopeo", "--insecure-policy", "copy", "--quiet", $"oci:{layout}:v1", $"docker-archive:{tar}:{recorded}");
        Image saved;
        using (var r = await Http.PostAsJsonAsync("/v1/images/import", new ImportImageRequest { Path = tar }, ImageApi.Json))
        {
            Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
            saved = (await r.Content.ReadFromJsonAsync<Image>(ImageApi.Json))!;
        }
        Assert.Equal(recorded, saved.Name);

        var sb = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = saved.Name });
        try { Assert.Equal("imported\n", await ImageApi.RunAsync(Http, sb.Id, "/bin/cat", "/origin.txt")); }
        finally { await ImageApi.DeleteSandboxQuietlyAsync(Http, sb.Id); }

        using var missing = await Http.PostAsJsonAsync("/v1/images/import", new ImportImageRequest { Path = Path.Combine(work, "nothing-here") }, ImageApi.Json);
        Assert.Equal(ErrorCodes.InvalidRequest, (await Problems.ReadAsync(missing)).Code);
        // Outside the import directory (a real layout, readable by the daemon): refused, 403.
        using var outsideDir = new TempDir("it-import-outside");
        var outside = new OciLayoutBuilder(outsideDir.Combine("layout"));
        outside.Tag(outside.AddImage(TestImages.Busybox()).Manifest, "v1");
        using (var refused = await Http.PostAsJsonAsync("/v1/images/import", new ImportImageRequest { Path = outsideDir.Combine("layout"), Name = Unique("outside") + ":v1" }, ImageApi.Json))
        {
            var p = await Problems.ReadAsync(refused);
            Assert.Equal(ErrorCodes.PermissionDenied, p.Code);
            Assert.Equal(403, p.Status);
        }
        foreach (var n in new[] { name, saved.Name })
        {
            using var d = await Http.DeleteAsync(ImageApi.Path(n));
            Assert.Equal(HttpStatusCode.NoContent, d.StatusCode);
        }
    }

    [Fact]
    public async Task Repull_of_a_moved_tag_publishes_anew_and_keeps_the_old_disk_for_running_sandboxes()
    {
        var repoTag = Unique("test/moving") + ":latest";
        var (reference, v1) = await reg.PushImageAsync(repoTag, TestImages.Busybox(new LayerSpec([TarItem.File("version.txt", "1\n")])));
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;
        await ImageApi.PullAsync(Http, reference);
        var old = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = reference });
        Sandbox? fresh = null;
        try
        {
            var (_, v2) = await reg.PushImageAsync(repoTag, TestImages.Busybox(new LayerSpec([TarItem.File("version.txt", "2\n")])));
            var (status, image) = await ImageApi.PullAsync(Http, reference);
            Assert.Equal(HttpStatusCode.Created, status);
            Assert.Equal(v2.Manifest.Digest, image.Digest);
            Assert.NotEqual(v1.Manifest.Digest, image.Digest);
            Assert.Equal(before + 2, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);

            // The running sandbox's overlay is still backed by the first disk; a new one gets the second.
            Assert.Equal("1\n", await ImageApi.RunAsync(Http, old.Id, "/bin/cat", "/version.txt"));
            fresh = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = reference });
            Assert.Equal("2\n", await ImageApi.RunAsync(Http, fresh.Id, "/bin/cat", "/version.txt"));
        }
        finally
        {
            await ImageApi.DeleteSandboxQuietlyAsync(Http, old.Id);
            if (fresh is not null) await ImageApi.DeleteSandboxQuietlyAsync(Http, fresh.Id);
        }
        using (var d = await Http.DeleteAsync(ImageApi.Path(reference)))
            Assert.Equal(HttpStatusCode.NoContent, d.StatusCode);
        Assert.Equal(before, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
    }

    [Fact]
    public async Task Start_up_removes_image_directories_without_a_catalog_row_and_staging_leftovers()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var orphan = Path.Combine(dataDir, "images", "oci", "img-0123456789ab");
        var staging = Path.Combine(dataDir, "images", "oci", ".staging", "crashed-build");
        Directory.CreateDirectory(orphan);
        File.WriteAllText(Path.Combine(orphan, "disk.qcow2"), "half-published");
        Directory.CreateDirectory(staging);
        var partialBlob = Path.Combine(dataDir, "blobs", ".staging", "half-downloaded");
        Directory.CreateDirectory(Path.GetDirectoryName(partialBlob)!);
        File.WriteAllText(partialBlob, "partial layer");
        try
        {
            await using var daemon = await DaemonProcess.StartAsync(dataDir);
            Assert.False(Directory.Exists(orphan), "an image directory without a row survived start-up");
            Assert.False(Directory.Exists(staging), "image staging survived start-up");
            Assert.False(File.Exists(partialBlob), "a partial blob download survived start-up");
            var list = await daemon.Http.GetFromJsonAsync<List<Image>>("/v1/images", ImageApi.Json);
            Assert.Equal("base", Assert.Single(list!).Name);
        }
        finally { Directory.Delete(dataDir, recursive: true); }
    }

    [Fact]
    public async Task A_refused_pull_is_403_and_credentials_never_go_over_plain_http()
    {
        using var secured = await LocalRegistry.StartAsync(basicAuth: ("bough", "s3cret"));
        using var layout = new TempDir("it-layout");
        var dir = layout.Path;
        var reference = $"{secured.Host}/{Unique("private/bb")}:1";
        var credentials = Path.Combine(f.Daemon.DataDir, "registries.json");
        try
        {
            var b = new OciLayoutBuilder(dir);
            b.Tag(b.AddImage(TestImages.Busybox()).Manifest, "t");
            await Skopeo.PushAsync(dir, "t", reference, ("bough", "s3cret"));

            using (var refused = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = reference, Insecure = true }, ImageApi.Json))
            {
                var p = await Problems.ReadAsync(refused);
                Assert.Equal(ErrorCodes.RegistryUnauthorized, p.Code);
                Assert.Equal(403, p.Status);
            }
            // Credentials exist now (read per pull, no restart), but this registry is plain HTTP:
            // they are never sent over plaintext, so the pull is still refused, and says why.
            // (Credentials over HTTPS, to the registry's own host: Bough.Images.Tests, TLS registry.)
            File.WriteAllText(credentials, "{\"auths\": {\"" + secured.Host + "\": {\"username\": \"bough\", \"password\": \"s3cret\"}}}");
            using (var still = await Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = reference, Insecure = true }, ImageApi.Json))
            {
                var p = await Problems.ReadAsync(still);
                Assert.Equal(ErrorCodes.RegistryUnauthorized, p.Code);
                Assert.Contains("never sent", p.Detail, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(credentials);
        }
    }

    [Fact]
    public async Task A_pull_whose_only_client_disconnects_is_cancelled_and_leaves_nothing()
    {
        var before = ImageApi.PublishedDirs(f.Daemon.DataDir).Count;
        // Whether the disconnect lands before the pull ends is a race on a loaded 2-core machine
        // (the whole pull takes a few seconds); a pull that wins it is retried with a new name.
        string? abandoned = null;
        for (var attempt = 0; attempt < 3 && abandoned is null; attempt++)
        {
            var noise = new byte[64 << 20];
            new Random(7 + attempt).NextBytes(noise);
            var (reference, _) = await reg.PushImageAsync(Unique("test/cancel") + ":1",
                TestImages.Busybox(new LayerSpec([TarItem.File("noise.bin", noise)])));
            using var cts = new CancellationTokenSource();
            var post = Http.PostAsJsonAsync("/v1/images", new PullImageRequest { Ref = reference, Insecure = true }, ImageApi.Json, cts.Token);
            // Disconnect once the daemon has bytes on disk (so it has things to undo).
            while (!post.IsCompleted)
            {
                using var r = await Http.GetAsync(ImageApi.Path(reference));
                if (r.IsSuccessStatusCode && (await r.Content.ReadFromJsonAsync<Image>(ImageApi.Json))! is { } img
                    && (img.Phase is "extracting" or "publishing" || img.Layers?.Any(l => l.Done > 0) == true))
                {
                    cts.Cancel();
                    break;
                }
                await Task.Delay(20);
            }
            try
            {
                using var early = await post;
                // It finished first: clean up and try again.
                await Http.DeleteAsync(ImageApi.Path(reference));
                continue;
            }
            catch (OperationCanceledException) { }
            abandoned = reference;
        }
        Assert.True(abandoned is not null, "three pulls in a row finished before they could be abandoned");

        var sw = Stopwatch.StartNew();
        while (true)
        {
            using var r = await Http.GetAsync(ImageApi.Path(abandoned));
            if (r.StatusCode == HttpStatusCode.NotFound) break;
            var image = (await r.Content.ReadFromJsonAsync<Image>(ImageApi.Json))!;
            Assert.True(image.State == ImageStates.Pulling, $"expected the pull to be cancelled, it is {image.State}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "the abandoned pull is still running after 60 s");
            await Task.Delay(250);
        }
        Assert.Equal(before, ImageApi.PublishedDirs(f.Daemon.DataDir).Count);
        Assert.Empty(StagingLeftovers());
    }

    private IEnumerable<string> StagingLeftovers()
    {
        var staging = Path.Combine(f.Daemon.DataDir, "images", "oci", ".staging");
        return Directory.Exists(staging) ? Directory.EnumerateFileSystemEntries(staging) : [];
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"{file} failed: {await err}");
    }
}
