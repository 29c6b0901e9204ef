using Bough.Client;
using Bough.Contracts;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// The snapshots page (/ui/snapshots) in a real Chromium against a real daemon: snapshots made through the API
/// show with their lineage and dedup bar; deleting the parent with cascade first says which descendants go with it,
/// then removes both from the page and the daemon.
/// </summary>
[Collection("dashboard")]
public sealed class SnapshotsPageTests(DashboardFixture fx)
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 120_000 };

    [Fact]
    public async Task Shows_a_snapshot_and_deletes_it_with_the_cascade_preview()
    {
        var client = fx.Daemon.Client;
        var tag = "ui-snap-" + Guid.NewGuid().ToString("N")[..8];
        var sb = await client.CreateSandboxAsync(new CreateSandboxRequest { Metadata = new() { ["test"] = "snapshots-page" } });
        Snapshot parent, child;
        try
        {
            parent = await client.CreateSnapshotAsync(sb.Id, tag);
            child = await client.CreateSnapshotAsync(sb.Id, tag + "-b");
        }
        finally
        {
            // The snapshots stay (tagged); the sandbox would block their delete.
            await client.DeleteSandboxAsync(sb.Id);
        }
        Assert.Equal(parent.Id, child.ParentId);

        var page = await fx.SignedInPageAsync("snapshots");
        try
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Snapshots", Level = 1 })).ToBeVisibleAsync();
            var parentRow = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = parent.Id, Exact = true }) });
            var childRow = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = child.Id, Exact = true }) });
            await Expect(parentRow).ToBeVisibleAsync(Visible);
            await Expect(parentRow).ToContainTextAsync(tag);
            await Expect(parentRow).ToContainTextAsync("dedup saved");
            await Expect(parentRow.GetByRole(AriaRole.Link, new() { Name = sb.Id })).ToBeVisibleAsync();
            // The child links its parent, in the parent column and in its ancestors.
            await Expect(childRow.GetByRole(AriaRole.Link, new() { Name = parent.Id })).ToHaveCountAsync(2);
            await Expect(childRow.GetByRole(AriaRole.Img, new() { NameRegex = new("^Stores .+ of .+ logical$") })).ToBeVisibleAsync();

            // Without cascade the preview says the delete would be refused; with it, what it takes along.
            await parentRow.GetByRole(AriaRole.Button, new() { Name = $"Delete snapshot {parent.Id}" }).ClickAsync();
            await Expect(parentRow.GetByRole(AriaRole.Status)).ToContainTextAsync("without cascade the delete is refused");
            await parentRow.GetByRole(AriaRole.Checkbox, new() { Name = $"Cascade the delete of {parent.Id}" }).CheckAsync();
            await Expect(parentRow.GetByRole(AriaRole.Status)).ToContainTextAsync($"Deleting also removes 1 snapshots: {child.Id}");
            await DashboardFixture.ScreenshotAsync(page, "snapshots");
            await parentRow.GetByRole(AriaRole.Button, new() { Name = "Confirm: Delete" }).ClickAsync();

            await Expect(page.GetByRole(AriaRole.Rowheader, new() { Name = parent.Id, Exact = true })).ToHaveCountAsync(0, new() { Timeout = 60_000 });
            await Expect(page.GetByRole(AriaRole.Rowheader, new() { Name = child.Id, Exact = true })).ToHaveCountAsync(0);
            foreach (var id in new[] { parent.Id, child.Id })
            {
                var gone = await Assert.ThrowsAsync<BoughApiException>(() => client.GetSnapshotAsync(id));
                Assert.Equal(404, gone.Status);
            }
        }
        finally
        {
            try { await client.DeleteSnapshotAsync(parent.Id, cascade: true); }
            catch (BoughApiException ex) when (ex.Status == 404) { }
            await page.Context.CloseAsync();
        }
    }
}
