using System.Text.RegularExpressions;
using Bough.Client;
using Bough.Contracts;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// The overview (/ui/) in a real Chromium against a real daemon with real VMs: a sandbox created from its form
/// appears without a reload and exists in the daemon; pause and resume change its state on the page; delete
/// removes it from the page and the daemon; a narrow window still shows the table and its actions.
/// </summary>
[Collection("dashboard")]
public sealed partial class OverviewTests(DashboardFixture fx)
{
    /// <summary>TCG VMs: a boot, pause or restore takes seconds to a minute.</summary>
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 180_000 };

    private static readonly LocatorAssertionsToContainTextOptions Text = new() { Timeout = 180_000 };

    [Fact]
    public async Task Create_pause_resume_and_delete_from_the_overview()
    {
        var page = await fx.SignedInPageAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sandboxes", Level = 1 })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Meter, new() { Name = "Guest memory committed" })).ToBeVisibleAsync();

        await page.GetByLabel("Image", new() { Exact = true }).FillAsync("base");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "Creating…" })).ToBeVisibleAsync();
        var created = page.GetByRole(AriaRole.Status).Filter(new() { HasTextRegex = CreatedRegex() });
        await Expect(created).ToBeVisibleAsync(Visible);
        var id = CreatedRegex().Match(await created.InnerTextAsync()).Groups[1].Value;
        try
        {
            // It is in the table (no reload) and in the daemon.
            var row = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Link, new() { Name = id, Exact = true }) });
            await Expect(row).ToBeVisibleAsync();
            Assert.Equal(SandboxStates.Running, (await fx.Daemon.Client.GetSandboxAsync(id)).State);
            await Expect(row).ToContainTextAsync(SandboxStates.Running, Text);
            // The sparklines fill in from the page's own sampling.
            await Expect(row.GetByRole(AriaRole.Img, new() { NameRegex = new Regex($"^CPU of {id}: \\d+%$") })).ToBeVisibleAsync(Visible);
            // A few more samples (one every 2 s) so that the screenshot shows lines, not dots.
            await page.WaitForTimeoutAsync(8_000);
            await DashboardFixture.ScreenshotAsync(page, "overview");

            await row.GetByRole(AriaRole.Button, new() { Name = $"Pause {id}" }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = $"Resume {id}" })).ToBeVisibleAsync(Visible);
            await Expect(row).ToContainTextAsync(SandboxStates.Paused);
            Assert.Equal(SandboxStates.Paused, (await fx.Daemon.Client.GetSandboxAsync(id)).State);

            await row.GetByRole(AriaRole.Button, new() { Name = $"Resume {id}" }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = $"Pause {id}" })).ToBeEnabledAsync(new() { Timeout = 180_000 });
            await Expect(row).ToContainTextAsync(SandboxStates.Running);
            Assert.Equal(SandboxStates.Running, (await fx.Daemon.Client.GetSandboxAsync(id)).State);

            // Delete asks first, then the row vanishes and the daemon no longer has it.
            await row.GetByRole(AriaRole.Button, new() { Name = $"Delete sandbox {id}" }).ClickAsync();
            await row.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = id, Exact = true })).ToHaveCountAsync(0, new() { Timeout = 180_000 });
            var gone = await Assert.ThrowsAsync<BoughApiException>(() => fx.Daemon.Client.GetSandboxAsync(id));
            Assert.Equal(404, gone.Status);
        }
        finally
        {
            await DeleteQuietlyAsync(id);
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task A_sandbox_made_elsewhere_appears_live_and_a_narrow_window_keeps_the_table_usable()
    {
        var page = await fx.SignedInPageAsync(width: 420, height: 800);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sandboxes", Level = 1 })).ToBeVisibleAsync();
        var sb = await fx.Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest { Metadata = new() { ["test"] = "overview-narrow" } });
        try
        {
            // Made through the API while the page is open: it appears through the event stream.
            var row = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Link, new() { Name = sb.Id, Exact = true }) });
            await Expect(row).ToBeVisibleAsync(Visible);
            await Expect(row).ToContainTextAsync(SandboxStates.Running, Text);
            // Narrow: the id, state and every action stay on screen (optional columns hide instead).
            await Expect(row.GetByRole(AriaRole.Link, new() { Name = sb.Id })).ToBeInViewportAsync();
            // Wholly on screen, not clipped by the table's own horizontal scroll.
            foreach (var action in new[] { $"Snapshot {sb.Id}", $"Branch {sb.Id}", $"Pause {sb.Id}", $"Delete sandbox {sb.Id}" })
                await Expect(row.GetByRole(AriaRole.Button, new() { Name = action })).ToBeInViewportAsync(new() { Ratio = 1 });
            await Expect(page.GetByRole(AriaRole.Columnheader, new() { Name = "Image or template" })).ToBeHiddenAsync();
            var overflow = await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth > window.innerWidth + 1");
            Assert.False(overflow, "the narrow overview scrolls sideways");
            await DashboardFixture.ScreenshotAsync(page, "overview-narrow");
        }
        finally
        {
            await DeleteQuietlyAsync(sb.Id);
            await page.Context.CloseAsync();
        }
    }

    private async Task DeleteQuietlyAsync(string id)
    {
        try { await fx.Daemon.Client.DeleteSandboxAsync(id); }
        catch (BoughApiException ex) when (ex.Status == 404) { }
    }

    [GeneratedRegex(@"Created (sb-[A-Za-z0-9-]+)\.")]
    private static partial Regex CreatedRegex();
}
