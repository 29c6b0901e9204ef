using System.Security.Cryptography;
using Bough.Client;
using Bough.Contracts;
using Bough.TestSupport.Registry;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// The images page in a real Chromium against a real daemon: a pull from a real local registry with its per-layer
/// progress, the image in the table, its delete; a template made from the page, with a ready check that passes and one
/// whose output comes back.
/// </summary>
[Collection("dashboard")]
public sealed class ImagesPageTests(DashboardFixture fx, RegistryFixture reg) : IClassFixture<RegistryFixture>
{
    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task A_pull_shows_its_layers_progress_then_the_image_which_can_be_deleted()
    {
        // A layer of incompressible bytes big enough that extracting and publishing it takes a visible while.
        var (reference, _) = await reg.PushImageAsync(Unique("ui/pull") + ":1", TestImages.Busybox(
            new LayerSpec([TarItem.Dir("data"), TarItem.File("data/blob.bin", RandomNumberGenerator.GetBytes(64 << 20))], LayerCompression.None)));
        var page = await fx.SignedInPageAsync("images");
        try
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Images", Level = 1 })).ToBeVisibleAsync();
            var images = page.GetByRole(AriaRole.Table, new() { Name = "Images" });
            await Expect(images.GetByRole(AriaRole.Rowheader, new() { Name = "base", Exact = true })).ToBeVisibleAsync();

            // A malformed reference is refused at once, with the engine's words.
            await page.GetByLabel("Image reference").FillAsync("Not A Reference!");
            await page.GetByRole(AriaRole.Button, new() { Name = "Pull", Exact = true }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "invalid_request" })).ToBeVisibleAsync();

            await page.GetByLabel("Image reference").FillAsync(reference);
            await page.GetByLabel("Plain HTTP registry (insecure)").CheckAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Pull", Exact = true }).ClickAsync();

            var progress = page.GetByRole(AriaRole.Article, new() { Name = $"Progress of {reference}" });
            await Expect(progress).ToBeVisibleAsync();
            await Expect(progress.GetByRole(AriaRole.Progressbar, new() { Name = $"Layer 2 of {reference}" })).ToBeVisibleAsync();
            await DashboardFixture.ScreenshotAsync(page, "images-pulling");

            var row = images.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = reference, Exact = true }) });
            await Expect(row).ToContainTextAsync("ready", new() { Timeout = 180_000 });
            await Expect(progress).ToHaveCountAsync(0);
            Assert.Equal(ImageStates.Ready, (await fx.Daemon.Client.GetImageAsync(reference)).State);
            await DashboardFixture.ScreenshotAsync(page, "images");

            await row.GetByRole(AriaRole.Button, new() { Name = $"Delete image {reference}" }).ClickAsync();
            await row.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
            var gone = await Assert.ThrowsAsync<BoughApiException>(() => fx.Daemon.Client.GetImageAsync(reference));
            Assert.Equal(ErrorCodes.ImageNotFound, gone.Code);
        }
        finally
        {
            try { await fx.Daemon.Client.DeleteImageAsync(reference); } catch (BoughApiException) { }
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task A_template_is_created_from_the_page_and_a_check_that_never_passes_shows_its_output()
    {
        var good = Unique("ui-tpl");
        var bad = Unique("ui-tpl-bad");
        var page = await fx.SignedInPageAsync("images", width: 420, height: 900);
        try
        {
            var form = page.GetByRole(AriaRole.Form, new() { Name = "Create a template" });
            await Expect(form.GetByLabel("Image")).ToBeVisibleAsync();

            await form.GetByLabel("Template name").FillAsync(bad);
            await form.GetByLabel("Ready timeout (s)").FillAsync("3");
            await form.GetByLabel("Ready check (run with /bin/sh -c until it exits 0)").FillAsync("echo not-yet-$((1+1)); exit 3");
            await form.GetByRole(AriaRole.Button, new() { Name = "Create template" }).ClickAsync();
            var failure = page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "template_not_ready" });
            await Expect(failure).ToBeVisibleAsync(new() { Timeout = 240_000 });
            await Expect(failure).ToContainTextAsync("not-yet-2"); // the check's own output, as the engine returned it
            await Expect(failure).ToContainTextAsync("exited 3");

            await form.GetByLabel("Template name").FillAsync(good);
            await form.GetByLabel("Ready timeout (s)").FillAsync("120");
            await form.GetByLabel("Ready check (run with /bin/sh -c until it exits 0)").FillAsync("test -e /etc/passwd");
            await form.GetByRole(AriaRole.Button, new() { Name = "Create template" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = $"Template {good} is ready" }))
                .ToBeVisibleAsync(new() { Timeout = 240_000 });
            var templates = page.GetByRole(AriaRole.Table, new() { Name = "Templates" });
            var row = templates.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = good, Exact = true }) });
            await Expect(row).ToBeVisibleAsync();
            Assert.Contains(await fx.Daemon.Client.ListTemplatesAsync(), t => t.Name == good);
            Assert.DoesNotContain(await fx.Daemon.Client.ListTemplatesAsync(), t => t.Name == bad);
            await DashboardFixture.ScreenshotAsync(page, "images-narrow");

            await row.GetByRole(AriaRole.Button, new() { Name = $"Delete template {good}" }).ClickAsync();
            await row.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
            Assert.DoesNotContain(await fx.Daemon.Client.ListTemplatesAsync(), t => t.Name == good);
        }
        finally
        {
            foreach (var name in new[] { good, bad })
            {
                try { await fx.Daemon.Client.DeleteTemplateAsync(name); } catch (BoughApiException) { }
            }
            await page.Context.CloseAsync();
        }
    }
}
