using Microsoft.Playwright;

namespace Bough.Integration.Tests.Dashboard;

/// <summary>
/// A daemon and a real headless Chromium (Debian's <c>chromium</c>, driven by Playwright for .NET, which never
/// downloads a browser of its own) for the dashboard's end-to-end tests. Screenshots go to
/// <see cref="ArtifactsDir"/> (<c>$BOUGH_TEST_ARTIFACTS/dashboard</c>, else under the test output).
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public DaemonProcess Daemon { get; private set; } = null!;
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    public static string ArtifactsDir { get; } = Path.Combine(
        Environment.GetEnvironmentVariable("BOUGH_TEST_ARTIFACTS") is { Length: > 0 } a ? a : Path.Combine(AppContext.BaseDirectory, "artifacts"),
        "dashboard");

    /// <summary>The dashboard's address on the test daemon.</summary>
    public string UiUrl => Daemon.Url.ToString().TrimEnd('/') + "/ui/";

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"{ChromiumPath} is missing: install Debian's chromium package (.ci/run does)");
        Directory.CreateDirectory(ArtifactsDir);
        Daemon = await DaemonProcess.StartAsync(TestEnvironment.NewDataDir());
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // Root in CI (no user namespace sandbox for Chromium), no GPU, and nothing that calls out to Google's
            // services: this machine's network is closed and tests never leave it.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>A fresh browser context (its own storage: nobody is signed in) at 1280×800.</summary>
    public async Task<IPage> NewPageAsync(int width = 1280, int height = 800)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
            AcceptDownloads = true,
        });
        context.SetDefaultTimeout(60_000); // TCG VMs: an action that boots or captures takes seconds
        return await context.NewPageAsync();
    }

    /// <summary>Opens the dashboard with the token in the address (the one-time sign-in link) and waits for the overview.</summary>
    public async Task<IPage> SignedInPageAsync(string path = "", int width = 1280, int height = 800)
    {
        var page = await NewPageAsync(width, height);
        await page.GotoAsync(UiUrl + path + "?token=" + Uri.EscapeDataString(Daemon.Token));
        // The circuit connects over a WebSocket; a busy CI machine can take a while.
        await Assertions.Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" }))
            .ToBeVisibleAsync(new() { Timeout = 30_000 });
        return page;
    }

    /// <summary>Saves a full-page screenshot as a test artifact.</summary>
    public static async Task ScreenshotAsync(IPage page, string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDir, name + ".png"), FullPage = true });

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        Playwright?.Dispose();
        if (Daemon is not null)
        {
            var dir = Daemon.DataDir;
            await Daemon.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}

[CollectionDefinition("dashboard")]
public sealed class DashboardCollectionDefinition : ICollectionFixture<DashboardFixture>;
