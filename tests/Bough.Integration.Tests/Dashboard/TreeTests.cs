using Bough.Client;
using Bough.Contracts;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// The lineage tree (/ui/tree) in a real Chromium against a real daemon: a running sandbox's node, reached with the
/// keyboard, branches ×3 from its panel and the three children appear under the branch snapshot without a reload.
/// </summary>
[Collection("dashboard")]
public sealed class TreeTests(DashboardFixture fx)
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 180_000 };

    [Fact]
    public async Task Branch_x3_from_the_tree_and_the_children_appear_without_reload()
    {
        var client = fx.Daemon.Client;
        var source = await client.CreateSandboxAsync(new CreateSandboxRequest { Metadata = new() { ["test"] = "tree" } });
        var made = new List<string> { source.Id };
        var page = await fx.SignedInPageAsync("tree");
        try
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Lineage tree", Level = 1 })).ToBeVisibleAsync();
            var node = page.GetByRole(AriaRole.Button, new() { Name = $"sandbox {source.Id} (running)" });
            await Expect(node).ToBeVisibleAsync(Visible);

            // Keyboard: focus the node and press Enter to open it in the side panel.
            await node.FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            var panel = page.GetByRole(AriaRole.Complementary);
            await Expect(panel.GetByRole(AriaRole.Heading, new() { Name = $"Sandbox {source.Id}" })).ToBeVisibleAsync();
            await Expect(panel.GetByRole(AriaRole.Link, new() { Name = $"Open sandbox {source.Id}" })).ToHaveAttributeAsync("href", $"sandboxes/{source.Id}");

            var urlBefore = page.Url;
            await page.EvaluateAsync("() => { window.__noReload = true; }");
            await panel.GetByLabel("Children").FillAsync("3");
            await panel.GetByRole(AriaRole.Button, new() { Name = "Branch ×3" }).ClickAsync();
            await Expect(panel.GetByRole(AriaRole.Status)).ToContainTextAsync("Branched 3", new() { Timeout = 300_000 });

            // The daemon has three children of one new branch snapshot taken from the source...
            var branch = (await client.ListSnapshotsAsync()).Single(s => s.SourceSandboxId == source.Id && s.Kind == "branch");
            var children = (await client.ListSandboxesAsync()).Where(s => s.SnapshotId == branch.Id).Select(s => s.Id).ToList();
            made.AddRange(children);
            Assert.Equal(3, children.Count);

            // ...and the page shows them, and the snapshot, without having reloaded.
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = $"snapshot {branch.Id} (branch)" })).ToBeVisibleAsync(Visible);
            foreach (var child in children)
                await Expect(page.GetByRole(AriaRole.Button, new() { Name = $"sandbox {child} (running)" })).ToBeVisibleAsync(Visible);
            Assert.True(await page.EvaluateAsync<bool>("() => window.__noReload === true"), "the page reloaded");
            Assert.Equal(urlBefore, page.Url);

            // The snapshot node opens too, with its stored bytes and stop window.
            await page.GetByRole(AriaRole.Button, new() { Name = $"snapshot {branch.Id} (branch)" }).ClickAsync();
            await Expect(panel.GetByRole(AriaRole.Heading, new() { Name = $"Snapshot {branch.Id}" })).ToBeVisibleAsync();
            await Expect(panel).ToContainTextAsync("Stop window");
            await Expect(panel.GetByRole(AriaRole.Button, new() { Name = "Start children" })).ToBeEnabledAsync();
            await DashboardFixture.ScreenshotAsync(page, "tree");

            // Deletions leave the graph live too.
            await client.DeleteSandboxAsync(children[0]);
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = $"sandbox {children[0]} (running)" })).ToHaveCountAsync(0, new() { Timeout = 60_000 });
        }
        finally
        {
            foreach (var id in made)
            {
                try { await client.DeleteSandboxAsync(id); }
                catch (BoughApiException ex) when (ex.Status == 404) { }
            }
            await page.Context.CloseAsync();
        }
    }
}
