using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>Signing in to the dashboard with the API token, in a real Chromium against a real daemon.</summary>
[Collection("dashboard")]
public sealed class SignInTests(DashboardFixture fx)
{
    [Fact]
    public async Task Without_a_token_the_sign_in_page_shows_and_no_data()
    {
        var page = await fx.NewPageAsync();
        await page.GotoAsync(fx.UiUrl);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Bough" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" })).ToHaveCountAsync(0);
        await DashboardFixture.ScreenshotAsync(page, "sign-in");

        // A deep link shows the same form, not the page behind it.
        await page.GotoAsync(fx.UiUrl + "snapshots");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Bough" })).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_wrong_token_is_refused_and_the_right_one_signs_in()
    {
        var page = await fx.NewPageAsync();
        await page.GotoAsync(fx.UiUrl + "?token=not-the-token");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Bough" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("not valid");
        Assert.DoesNotContain("token=", page.Url, StringComparison.Ordinal);

        await page.GetByLabel("API token").FillAsync("still-wrong");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("not the daemon's API token");

        await page.GetByLabel("API token").FillAsync(fx.Daemon.Token);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" })).ToBeVisibleAsync();

        // The browser keeps the token (not in a cookie): a reload stays signed in; signing out forgets it.
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" })).ToBeVisibleAsync();
        Assert.DoesNotContain(await page.Context.CookiesAsync(), c => c.Value.Contains(fx.Daemon.Token, StringComparison.Ordinal));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Bough" })).ToBeVisibleAsync();
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in to Bough" })).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_token_in_the_address_signs_in_once_and_leaves_the_address_bar()
    {
        var page = await fx.SignedInPageAsync("snapshots");
        Assert.DoesNotContain("token", page.Url, StringComparison.Ordinal);
        Assert.EndsWith("/ui/snapshots", new Uri(page.Url).AbsolutePath, StringComparison.Ordinal);
        // The history entry no longer holds it either.
        Assert.DoesNotContain(fx.Daemon.Token, await page.EvaluateAsync<string>("() => location.href"), StringComparison.Ordinal);
        await page.Context.CloseAsync();
    }
}
