using Assistant.Tests;
using Microsoft.Playwright;

namespace Assistant.Ui.Tests;

/// <summary>The overlay tells a user how far to trust an answer: its confidence, and a banner on a picture the set does not know.</summary>
public sealed class OverlayTrustTests
{
    private static async Task<(string Banner, bool Hidden, string Confidence)> PageShows(string source)
    {
        await using var overlay = await OverlayProcess.StartAsync("--source", source, "--query", "how many circles are there?");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync(overlay.Url);
        await page.WaitForFunctionAsync("() => /%$/.test(document.getElementById('confidence').textContent)", null, new PageWaitForFunctionOptions { Timeout = 60_000 });
        return (await page.Locator("#unfamiliar").TextContentAsync() ?? "", await page.Locator("#unfamiliar").IsHiddenAsync(),
            await page.Locator("#confidence").InnerTextAsync());
    }

    [Fact]
    public async Task APictureOfAnotherKind_GetsTheBanner_AWorldSceneDoesNot()
    {
        var rose = Path.Combine(Path.GetTempPath(), $"assistant-rose-{Guid.NewGuid():N}.png");
        Tool.Run("convert", ["rose:", rose]);
        var (banner, hidden, confidence) = await PageShows($"file:{rose}");
        Assert.False(hidden);
        Assert.Contains("does not look like the scenes this model set knows", banner);
        Assert.Matches(@"^\d+%$", confidence);

        (_, hidden, confidence) = await PageShows("world");
        Assert.True(hidden);
        Assert.Matches(@"^\d+%$", confidence);
    }
}
