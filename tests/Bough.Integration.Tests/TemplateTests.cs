using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Bough.Contracts;
using Bough.TestSupport.Registry;

namespace Bough.Integration.Tests;

/// <summary>Templates against the real daemon: a busybox httpd started detached, ready-checked, snapshotted and forked.</summary>
[Collection("daemon")]
public sealed class TemplateTests(DaemonFixture f, RegistryFixture reg) : IClassFixture<RegistryFixture>
{
    private HttpClient Http => f.Daemon.Http;

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private static readonly List<string> HttpdStart = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"];
    private static readonly List<string> WgetReady = ["/bin/busybox", "wget", "-q", "-O", "/tmp/r", "http://127.0.0.1:8080/"];

    private async Task<string> PushWebImageAsync()
    {
        var (reference, _) = await reg.PushImageAsync(Unique("test/web") + ":1", TestImages.Busybox(
            new LayerSpec([TarItem.Dir("www"), TarItem.File("www/index.html", "hello from the template\n")])));
        var (_, image) = await ImageApi.PullAsync(Http, reference);
        return image.Name;
    }

    [Fact]
    public async Task Template_forks_answer_at_once_and_delete_is_refused_while_in_use()
    {
        var image = await PushWebImageAsync();
        var name = Unique("web");
        var sandboxes = new List<string>();
        try
        {
            var sw = Stopwatch.StartNew();
            using (var r = await Http.PostAsJsonAsync("/v1/templates", new CreateTemplateRequest
            {
                Name = name, Image = image, Start = HttpdStart, Ready = WgetReady, ReadyTimeoutSeconds = 120,
                Env = new() { ["TEMPLATE_VAR"] = "t" },
            }, ImageApi.Json))
            {
                Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
                var t = (await r.Content.ReadFromJsonAsync<Template>(ImageApi.Json))!;
                Assert.Equal(name, t.Name);
                Assert.Equal(image, t.Image);
                Assert.True(t.WarmupMs > 0);
            }
            var template = await Http.GetFromJsonAsync<Template>($"/v1/templates/{name}", ImageApi.Json);
            Assert.Contains(await Http.GetFromJsonAsync<List<Template>>("/v1/templates", ImageApi.Json) ?? [], t => t.Name == name);
            // The builder sandbox is gone.
            var all = await Http.GetFromJsonAsync<List<Sandbox>>("/v1/sandboxes", ImageApi.Json);
            Assert.DoesNotContain(all!, s => s.Metadata.TryGetValue("bough.template-builder", out var b) && b == name);

            // The template's snapshot cannot be deleted behind its back.
            using (var snapDelete = await Http.DeleteAsync($"/v1/snapshots/{template!.SnapshotId}"))
            {
                var p = await Problems.ReadAsync(snapDelete);
                Assert.Equal(ErrorCodes.SnapshotInUse, p.Code);
                Assert.Contains(name, p.Detail);
            }

            List<Sandbox> forks;
            using (var r = await Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Template = name, Count = 10, Env = new() { ["FORK"] = "yes" } }, ImageApi.Json))
            {
                Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
                forks = (await r.Content.ReadFromJsonAsync<List<Sandbox>>(ImageApi.Json))!;
            }
            sandboxes.AddRange(forks.Select(s => s.Id));
            Assert.Equal(10, forks.Count);
            Assert.Equal(10, forks.Select(s => s.Id).Distinct().Count());
            // Each fork serves at once: one wget, no retry loop.
            await Task.WhenAll(forks.Select(async s =>
            {
                Assert.Equal(name, s.Template);
                Assert.Equal(image, s.Image);
                var got = await ImageApi.ExecAsync(Http, s.Id, new ExecRequest { Cmd = ["/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"] });
                Assert.True(got.ExitCode == 0, $"{s.Id}: wget exited {got.ExitCode}: {got.Stderr}");
                Assert.Equal("hello from the template\n", got.Stdout);
            }));
            Assert.Equal("t|yes\n", await ImageApi.RunAsync(Http, forks[0].Id, "/bin/sh", "-c", "echo \"$TEMPLATE_VAR|$FORK\""));

            // One more, in parallel POSTs rather than count.
            var parallel = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => ImageApi.CreateAsync(Http, new CreateSandboxRequest { Template = name })));
            sandboxes.AddRange(parallel.Select(s => s.Id));

            using (var busy = await Http.DeleteAsync($"/v1/templates/{name}"))
            {
                var p = await Problems.ReadAsync(busy);
                Assert.Equal(ErrorCodes.TemplateInUse, p.Code);
                Assert.Contains(forks[0].Id, p.Detail);
            }
            using (var bothSources = await Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Template = name, Image = image }, ImageApi.Json))
                Assert.Equal(400, (await Problems.ReadAsync(bothSources)).Status);
            using (var imageBusy = await Http.DeleteAsync(ImageApi.Path(image)))
                Assert.Equal(ErrorCodes.ImageInUse, (await Problems.ReadAsync(imageBusy)).Code);

            foreach (var id in sandboxes) await ImageApi.DeleteSandboxQuietlyAsync(Http, id);
            sandboxes.Clear();
            using (var done = await Http.DeleteAsync($"/v1/templates/{name}"))
                Assert.Equal(HttpStatusCode.NoContent, done.StatusCode);
            using (var snap = await Http.GetAsync($"/v1/snapshots/{template.SnapshotId}"))
                Assert.Equal(HttpStatusCode.NotFound, snap.StatusCode);
            using (var gone = await Http.GetAsync($"/v1/templates/{name}"))
                Assert.Equal(ErrorCodes.TemplateNotFound, (await Problems.ReadAsync(gone)).Code);
        }
        finally
        {
            foreach (var id in sandboxes) await ImageApi.DeleteSandboxQuietlyAsync(Http, id);
            using var _ = await Http.DeleteAsync($"/v1/templates/{name}");
            using var __ = await Http.DeleteAsync(ImageApi.Path(image));
        }
    }

    [Fact]
    public async Task Template_of_an_image_without_etc_passwd_or_var_log_works()
    {
        // Only busybox and a web root: no /etc/passwd (so no user names resolve), no /var/log.
        var (reference, _) = await reg.PushImageAsync(Unique("test/bare") + ":1", new ImageSpec([new LayerSpec(
        [
            TarItem.Dir("bin"),
            TarItem.File("bin/busybox", File.ReadAllBytes(TestImages.HostBusybox), (UnixFileMode)0b111_101_101),
            TarItem.Symlink("bin/sh", "busybox"),
            TarItem.Dir("www"),
            TarItem.File("www/index.html", "bare\n"),
        ])]) { Env = ["PATH=/bin"] });
        var (_, image) = await ImageApi.PullAsync(Http, reference);
        var name = Unique("bare");
        try
        {
            using (var r = await Http.PostAsJsonAsync("/v1/templates", new CreateTemplateRequest
            {
                Name = name, Image = image.Name, Start = HttpdStart, Ready = WgetReady, ReadyTimeoutSeconds = 120,
            }, ImageApi.Json))
                Assert.True(r.StatusCode == HttpStatusCode.Created, $"template create: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            using var created = await Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Template = name }, ImageApi.Json);
            var child = (await created.Content.ReadFromJsonAsync<Sandbox>(ImageApi.Json))!;
            using var exec = await Http.PostAsJsonAsync($"/v1/sandboxes/{child.Id}/exec",
                new ExecRequest { Cmd = ["/bin/sh", "-c", "/bin/busybox wget -q -O /tmp/r http://127.0.0.1:8080/ && cat /tmp/r"] }, ImageApi.Json);
            var result = (await exec.Content.ReadFromJsonAsync<ExecResult>(ImageApi.Json))!;
            Assert.Equal(0, result.ExitCode);
            Assert.Equal("bare\n", result.Stdout);
            using var _ = await Http.DeleteAsync($"/v1/sandboxes/{child.Id}");
        }
        finally
        {
            using var t = await Http.DeleteAsync($"/v1/templates/{name}");
            using var i = await Http.DeleteAsync(ImageApi.Path(image.Name));
        }
    }

    [Fact]
    public async Task Template_whose_ready_check_never_passes_is_not_ready_with_logs_and_leaves_nothing()
    {
        var image = await PushWebImageAsync();
        var name = Unique("never");
        try
        {
            using var r = await Http.PostAsJsonAsync("/v1/templates", new CreateTemplateRequest
            {
                Name = name, Image = image,
                Start = ["/bin/sh", "-c", "echo start-log-marker; exit 3"],
                Ready = ["/bin/busybox", "wget", "-q", "-O", "/tmp/r", "http://127.0.0.1:9/"],
                ReadyTimeoutSeconds = 3,
            }, ImageApi.Json);
            var p = await Problems.ReadAsync(r);
            Assert.Equal(ErrorCodes.TemplateNotReady, p.Code);
            Assert.Equal(422, p.Status);
            Assert.Contains("start-log-marker", p.Detail);
            Assert.Contains("console", p.Detail);

            using var missing = await Http.GetAsync($"/v1/templates/{name}");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            var all = await Http.GetFromJsonAsync<List<Sandbox>>("/v1/sandboxes", ImageApi.Json);
            Assert.DoesNotContain(all!, s => s.Metadata.TryGetValue("bough.template-builder", out var b) && b == name);

            using var badName = await Http.PostAsJsonAsync("/v1/templates", new CreateTemplateRequest { Name = "Bad Name", Image = image }, ImageApi.Json);
            Assert.Equal(ErrorCodes.InvalidRequest, (await Problems.ReadAsync(badName)).Code);
            using var noImage = await Http.PostAsJsonAsync("/v1/templates", new CreateTemplateRequest { Name = Unique("x"), Image = "never-pulled" }, ImageApi.Json);
            Assert.Equal(ErrorCodes.ImageNotFound, (await Problems.ReadAsync(noImage)).Code);
            using var noTemplate = await Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Template = "no-such-template" }, ImageApi.Json);
            Assert.Equal(ErrorCodes.TemplateNotFound, (await Problems.ReadAsync(noTemplate)).Code);
        }
        finally
        {
            using var _ = await Http.DeleteAsync(ImageApi.Path(image));
        }
    }
}
