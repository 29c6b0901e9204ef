using System.Security.Cryptography;
using Bough.Client;
using Bough.Contracts;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// The sandbox page (/ui/sandboxes/{id}) in a real Chromium against a real daemon with real VMs: details, the live
/// console log, the terminal (a shell on a guest pty over the attach WebSocket), the file browser's transfers
/// (checked byte for byte through the C# client), deleting, and an unknown id.
/// </summary>
[Collection("dashboard")]
public sealed class SandboxPageTests(DashboardFixture fx)
{
    private BoughClient Client => fx.Daemon.Client;

    /// <summary>For what waits on a VM under TCG on a busy host (a shell's start, a pause): seconds, not the default 5.</summary>
    private static readonly LocatorAssertionsToBeVisibleOptions Slow = new() { Timeout = 60_000 };

    [Fact]
    public async Task The_page_shows_details_and_boot_console_and_its_terminal_runs_a_command()
    {
        // A cold boot: its console has the guest's init lines (a restored sandbox's starts later).
        var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest { ColdBoot = true, Metadata = new() { ["test"] = "sandbox-page" } });
        var page = await fx.SignedInPageAsync("sandboxes/" + sb.Id);
        try
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sandbox " + sb.Id, Level = 1 })).ToBeVisibleAsync();
            var details = page.GetByRole(AriaRole.Region, new() { Name = "Details" });
            await Expect(details).ToContainTextAsync("running");
            await Expect(details).ToContainTextAsync("test=sandbox-page");
            await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Console log" })).ToContainTextAsync("BOUGH_INIT_DONE", new() { Timeout = 60_000 });
            await Expect(page.GetByRole(AriaRole.Alert)).ToHaveCountAsync(0);

            await page.GetByRole(AriaRole.Button, new() { Name = "Open terminal" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "Connected" })).ToBeVisibleAsync(Slow);
            var terminal = page.GetByRole(AriaRole.Region, new() { Name = "Terminal", Exact = true });
            await terminal.ClickAsync();
            await page.Keyboard.TypeAsync("echo dash-$((6*7))");
            await page.Keyboard.PressAsync("Enter");
            // Only the shell's arithmetic makes "dash-42": the typed line shows "dash-$((6*7))".
            await Expect(terminal).ToContainTextAsync("dash-42", new() { Timeout = 60_000 });

            // The shell is a process of the guest's table, listed with a Kill action.
            var shell = Assert.Single(await Client.ListProcessesAsync(sb.Id), p => p.Pty is not null);
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = $"Kill process {shell.Pid}" })).ToBeVisibleAsync(Slow);
            await DashboardFixture.ScreenshotAsync(page, "sandbox");

            // Closing the terminal hangs the shell up.
            await page.GetByRole(AriaRole.Button, new() { Name = "Close terminal" }).ClickAsync();
            await WaitUntilAsync(async () => (await Client.ListProcessesAsync(sb.Id)).All(p => p.Pid != shell.Pid));

            // Pause and resume: the state follows live.
            await page.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
            await Expect(details).ToContainTextAsync("paused", new() { Timeout = 60_000 });
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Open terminal" })).ToBeDisabledAsync();
            Assert.Equal(SandboxStates.Paused, (await Client.GetSandboxAsync(sb.Id)).State);
            await page.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Pause" })).ToBeVisibleAsync(Slow);
            Assert.Equal(SandboxStates.Running, (await Client.GetSandboxAsync(sb.Id)).State);
            await Expect(page.GetByRole(AriaRole.Alert)).ToHaveCountAsync(0);

            // Delete (two steps) goes back to the overview, and the sandbox is gone.
            await page.GetByRole(AriaRole.Button, new() { Name = $"Delete sandbox {sb.Id}" }).ClickAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();
            await page.WaitForURLAsync(u => new Uri(u).AbsolutePath == "/ui/");
            var gone = await Assert.ThrowsAsync<BoughApiException>(() => Client.GetSandboxAsync(sb.Id));
            Assert.Equal(404, gone.Status);
        }
        finally
        {
            await page.Context.CloseAsync();
            await DeleteQuietlyAsync(sb.Id);
        }
    }

    [Fact]
    public async Task Files_upload_download_and_delete_through_the_page()
    {
        var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var page = await fx.SignedInPageAsync("sandboxes/" + sb.Id);
        try
        {
            var files = page.GetByRole(AriaRole.Region, new() { Name = "Files" });
            await Expect(files.GetByLabel("Directory path")).ToHaveValueAsync("/root");

            // Upload: the browser sends the bytes to the REST API; the guest has exactly them.
            var up = RandomNumberGenerator.GetBytes(300_000);
            await files.GetByLabel("Upload files").SetInputFilesAsync(new FilePayload { Name = "from-browser.bin", MimeType = "application/octet-stream", Buffer = up });
            await Expect(files.GetByRole(AriaRole.Status)).ToContainTextAsync("Uploaded 1 file to /root", new() { Timeout = 60_000 });
            await Expect(files.GetByRole(AriaRole.Cell, new() { Name = "from-browser.bin", Exact = true })).ToBeVisibleAsync();
            using (var back = new MemoryStream())
            {
                await Client.DownloadFileAsync(sb.Id, "/root/from-browser.bin", back);
                Assert.Equal(up, back.ToArray());
            }

            // Download: a file the client wrote, saved by the browser, byte for byte.
            var down = RandomNumberGenerator.GetBytes(200_000);
            await Client.UploadFileAsync(sb.Id, "/root/sub/for-browser.bin", new MemoryStream(down));
            await files.GetByRole(AriaRole.Button, new() { Name = "Refresh files" }).ClickAsync();
            await files.GetByRole(AriaRole.Button, new() { Name = "Open directory sub" }).ClickAsync();
            await Expect(files.GetByLabel("Directory path")).ToHaveValueAsync("/root/sub");
            var download = await page.RunAndWaitForDownloadAsync(() =>
                files.GetByRole(AriaRole.Button, new() { Name = "Download for-browser.bin" }).ClickAsync());
            Assert.Equal("for-browser.bin", download.SuggestedFilename);
            Assert.Equal(down, await File.ReadAllBytesAsync(await download.PathAsync()));
            await DashboardFixture.ScreenshotAsync(page, "sandbox-files");

            // Up by the breadcrumbs, then delete (two steps): gone from the listing and from the guest.
            await files.GetByRole(AriaRole.Navigation, new() { Name = "Current directory" }).GetByRole(AriaRole.Button, new() { Name = "root" }).ClickAsync();
            await Expect(files.GetByLabel("Directory path")).ToHaveValueAsync("/root");
            await files.GetByRole(AriaRole.Button, new() { Name = "Delete file from-browser.bin" }).ClickAsync();
            await files.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();
            await Expect(files.GetByRole(AriaRole.Cell, new() { Name = "from-browser.bin", Exact = true })).ToHaveCountAsync(0);
            var missing = await Assert.ThrowsAsync<BoughApiException>(() => Client.DownloadFileAsync(sb.Id, "/root/from-browser.bin", new MemoryStream()));
            Assert.Equal(404, missing.Status);
            await Expect(page.GetByRole(AriaRole.Alert)).ToHaveCountAsync(0);

            // A narrow window: everything wraps, nothing scrolls sideways.
            await page.SetViewportSizeAsync(400, 800);
            await Expect(files.GetByLabel("Upload files")).ToBeVisibleAsync();
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= 400"), "the page scrolls sideways at 400 px");
            await DashboardFixture.ScreenshotAsync(page, "sandbox-narrow");
        }
        finally
        {
            await page.Context.CloseAsync();
            await DeleteQuietlyAsync(sb.Id);
        }
    }

    [Fact]
    public async Task An_unknown_id_shows_not_found()
    {
        var page = await fx.SignedInPageAsync("sandboxes/sb-does-not-exist");
        try
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("sb-does-not-exist");
            await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("not found");
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Open terminal" })).ToHaveCountAsync(0);
        }
        finally
        {
            await page.Context.CloseAsync();
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out waiting");
            await Task.Delay(250);
        }
    }

    private async Task DeleteQuietlyAsync(string id)
    {
        try { await Client.DeleteSandboxAsync(id); }
        catch (BoughApiException ex) when (ex.Status == 404) { }
    }
}
