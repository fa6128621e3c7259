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

    /// <summary>What the engine said it runs once the overlay set this budget ("small-d64-l2 + quecc V=4").</summary>
    private async Task<string> EngineConfigFor(string budgetMs)
    {
        var marker = $"overlay set budget {budgetMs} ms -> ";
        for (var waited = TimeSpan.Zero; waited < TimeSpan.FromSeconds(60); waited += TimeSpan.FromMilliseconds(100))
        {
            var output = _assistant.Output;
            int at = output.LastIndexOf(marker, StringComparison.Ordinal);
            if (at >= 0 && output.IndexOf('\n', at) is var end and > 0)
                return output[(at + marker.Length)..end].Trim();
            await Task.Delay(100);
        }
        throw new TimeoutException($"the engine never reported '{marker}'");
    }

    /// <summary>Orders configurations by what they cost: the set's other decoder above the small one, then more tokens.</summary>
    private static (int Decoder, int Tokens) Cost(string config) =>
        (config.StartsWith("small", StringComparison.Ordinal) ? 0 : 1, int.Parse(config[(config.LastIndexOf("V=", StringComparison.Ordinal) + 2)..]));

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

        // The latency control: each budget goes to the planner, the engine says what it now runs, and the page
        // shows that. At 1 ms nothing fits and it runs the cheapest configuration; at 500 ms (everything fits)
        // the configuration the set's law predicts most accurate, which is never cheaper.
        await page.Locator("#latency").FillAsync("1");
        await page.Locator("#latency").DispatchEventAsync("change");
        var cheap = await EngineConfigFor("1");
        // Which decoder is cheapest at 1 ms is this machine's calibration to decide: on two cores the small and medium
        // decoders' predicted times at V <= 4 are within a few hundredths of a millisecond (overheads, not FLOPs), and a
        // calibration under the suite's parallel load once chose medium at V=1. What must hold is below: the page shows
        // what the engine chose, and the choice at 500 ms costs no less.
        Assert.Matches(@"^(small|medium)-\S+ \+ quecc V=\d+$", cheap);
        await Until(page, $"() => document.getElementById('config').textContent === '{cheap}'");
        await Until(page, "() => document.getElementById('budget-flops').textContent !== ''");
        await page.Locator("#latency").FillAsync("500");
        await page.Locator("#latency").DispatchEventAsync("change");
        var best = await EngineConfigFor("500");
        await Until(page, $"() => document.getElementById('config').textContent === '{best}'");
        Assert.True(Cost(best).CompareTo(Cost(cheap)) >= 0, $"{cheap} at 1 ms, {best} at 500 ms");
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
