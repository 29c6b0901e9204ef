using System.Net;
using System.Net.Http.Json;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>The debian-python recipe, built for real (debootstrap; slow, one test) and booted.</summary>
[Collection("daemon")]
public sealed class RecipeImageTests(DaemonFixture f)
{
    private HttpClient Http => f.Daemon.Http;

    [Fact]
    public async Task Debian_python_image_builds_async_and_runs_python()
    {
        var name = "debian-python-" + Guid.NewGuid().ToString("N")[..6];
        using (var r = await Http.PostAsJsonAsync("/v1/images/build?async=true", new BuildImageRequest { Recipe = "debian-python", Name = name }, ImageApi.Json))
        {
            Assert.True(r.StatusCode == HttpStatusCode.Accepted, await r.Content.ReadAsStringAsync());
            Assert.Equal(ImageApi.Path(name), r.Headers.Location?.OriginalString);
            var pending = (await r.Content.ReadFromJsonAsync<Image>(ImageApi.Json))!;
            Assert.Equal(name, pending.Name);
        }
        var image = await ImageApi.WaitReadyAsync(Http, name, TimeSpan.FromMinutes(40));
        Assert.Equal("recipe", image.Source);

        var sb = await ImageApi.CreateAsync(Http, new CreateSandboxRequest { Image = name, MemoryMiB = 512 });
        try
        {
            var r = await ImageApi.ExecAsync(Http, sb.Id, new ExecRequest { Cmd = ["python3", "-c", "print(6*7)"] });
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal("42\n", r.Stdout);
        }
        finally
        {
            await ImageApi.DeleteSandboxQuietlyAsync(Http, sb.Id);
            using var _ = await Http.DeleteAsync(ImageApi.Path(name));
        }
    }
}
