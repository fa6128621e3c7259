using Assistant.Tests;
using Microsoft.Playwright;

namespace Assistant.Ui.Tests;

/// <summary>The overlay page in a real browser: Debian's Chromium, headless, driven by Playwright.</summary>
public sealed class OverlayBrowserTests : IAsyncLifetime
{
    private OverlayProcess _assistant = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _assistant = await OverlayProcess.StartAsync();
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",  // apt's Chromium; Playwright never downloads one here
            Headless = true,
            Args = ["--no-sandbox"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _assistant.DisposeAsync();
    }

    private static Task<string> Text(IPage page, string id) => page.Locator("#" + id).InnerTextAsync();

    private static Task Until(IPage page, string condition) =>
        page.WaitForFunctionAsync(condition, null, new PageWaitForFunctionOptions { Timeout = 60_000 });

    [Fact]
    public async Task ThePage_StreamsAnswers_AndItsControlsChangeTheEngine()
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1024, Height = 760 } });
        await page.GotoAsync(_assistant.Url);
        Assert.Equal("assistant overlay", await page.TitleAsync());

        // Telemetry arrives over the WebSocket: answers to the world's questions, frame after frame.
        await Until(page, "() => document.getElementById('status').textContent === 'live'");
        await Until(page, "() => document.getElementById('answer').textContent.length > 0");
        var firstFps = await Text(page, "fps");
        await Until(page, "() => document.getElementById('accuracy').textContent !== '-'");
        Assert.NotEqual("-", firstFps);
        Assert.Contains("V=", await Text(page, "config"));
        // The scaling-law chart got its points (one option per decoder and V from them).
        Assert.True(await page.Locator("#decoder option").CountAsync() >= 3);

        // The latency control: a 1 ms budget fits nothing, so the planner runs the cheapest (small) decoder;
        // 500 ms fits everything, so the large one. The page shows what the engine reports.
        await page.Locator("#latency").FillAsync("1");
        await page.Locator("#latency").DispatchEventAsync("change");
        await Until(page, "() => document.getElementById('config').textContent.startsWith('small')");
        await Until(page, "() => document.getElementById('budget-flops').textContent !== ''");
        await page.Locator("#latency").FillAsync("500");
        await page.Locator("#latency").DispatchEventAsync("change");
        await Until(page, "() => document.getElementById('config').textContent.startsWith('large')");
        Assert.Contains("budget 500 ms -> large", _assistant.Output);
        await page.Locator("body").ClickAsync(new LocatorClickOptions { Position = new Position { X = 5, Y = 5 } });  // focus off the slider
        await Until(page, "() => document.getElementById('latency-value').textContent === '500 ms'");

        // A forced V wins over the planner's.
        await page.Locator("#tokens").SelectOptionAsync("16");
        await Until(page, "() => document.getElementById('config').textContent.endsWith('V=16')");

        // A typed question replaces the world's and its answer comes back.
        await page.Locator("#query").FillAsync("is there a red square?");
        await page.Locator("#ask").ClickAsync();
        await Until(page, "() => document.getElementById('question').textContent === 'is there a red square?'");
        await Until(page, "() => ['yes', 'no'].includes(document.getElementById('answer').textContent)");
        await page.Locator("#query").FillAsync("how many circles are there?");
        await page.Locator("#ask").ClickAsync();
        await Until(page, "() => ['zero','one','two','three','four','five','six'].includes(document.getElementById('answer').textContent)");

        // Pause stops the frames; resume starts them again.
        await page.Locator("#pause").ClickAsync();
        await Until(page, "() => document.getElementById('pause').textContent === 'resume'");
        var frameBefore = await page.EvaluateAsync<long>("() => fetch('api/state').then(r => r.json()).then(t => t.frame)");
        await Task.Delay(600);
        Assert.Equal(frameBefore, await page.EvaluateAsync<long>("() => fetch('api/state').then(r => r.json()).then(t => t.frame)"));
        await page.Locator("#pause").ClickAsync();
        await Until(page, "() => document.getElementById('pause').textContent === 'pause'");

        var artifacts = Path.Combine(Repo.Root, "artifacts");
        Directory.CreateDirectory(artifacts);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "overlay.png"), FullPage = true });
        Assert.True(new FileInfo(Path.Combine(artifacts, "overlay.png")).Length > 10_000);
    }
}
