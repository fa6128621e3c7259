using System.Text.Json.Nodes;
using Assistant.Tests;
using Microsoft.Playwright;

namespace Assistant.Ui.Tests;

/// <summary>
/// The overlay's layout at 1280 x 900 in Chromium, asserted from the DOM: the picture at its own aspect ratio, nothing
/// drawn over it, every text readable (WCAG AA contrast), both charts with named axes and a legend beside the data.
/// Takes the screenshot docs/OVERLAY.md shows (artifacts/overlay-1280x900.png).
/// </summary>
public sealed class OverlayLayoutTests
{
    private const string Contrast = """
        () => {
          const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
          const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                                             .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
          const background = (el) => {
            for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3); }
            return [255, 255, 255];
          };
          const worst = [];
          for (const el of document.querySelectorAll("body *")) {
            if (el.hidden || el.closest("[hidden]") || getComputedStyle(el).display === "none") continue;
            const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) || ["INPUT", "SELECT", "BUTTON"].includes(el.tagName);
            if (!own) continue;
            const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            worst.push({ text: (el.value || el.textContent).trim().slice(0, 30), ratio });
          }
          return worst.sort((x, y) => x.ratio - y.ratio).slice(0, 3);
        }
        """;

    [Fact]
    public async Task AtTwelveEightyByNineHundred_ThePictureKeepsItsShape_NothingCoversIt_AndEveryTextIsReadable()
    {
        var card = Path.Combine(Path.GetTempPath(), $"assistant-card-{Guid.NewGuid():N}.png");
        Tool.Run("ffmpeg", ["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x480", "-frames:v", "1", card]);
        await using var overlay = await OverlayProcess.StartAsync("--source", $"file:{card}", "--query", "how many circles are there?");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await page.GotoAsync(overlay.Url);
        await page.WaitForFunctionAsync("() => document.getElementById('preview').dataset.source && document.getElementById('law-chart').dataset.plot && document.getElementById('latency-chart').dataset.plot",
            null, new PageWaitForFunctionOptions { Timeout = 60_000 });
        await page.WaitForTimeoutAsync(500);

        // The picture at its own aspect ratio (4:3 here), within 1%.
        var preview = (await page.Locator("#preview").BoundingBoxAsync())!;
        Assert.Equal("640x480", await page.Locator("#preview").GetAttributeAsync("data-source"));
        Assert.InRange(preview.Width / preview.Height, 640.0 / 480 * 0.99, 640.0 / 480 * 1.01);
        // Nothing of the HUD, or any other part of the page, lies on the picture.
        foreach (var selector in new[] { "#hud", ".side", "header" })
        {
            var box = (await page.Locator(selector).BoundingBoxAsync())!;
            bool overlaps = box.X < preview.X + preview.Width && preview.X < box.X + box.Width && box.Y < preview.Y + preview.Height && preview.Y < box.Y + box.Height;
            Assert.False(overlaps, $"{selector} overlaps the preview");
        }
        // Every text at least 4.5:1 against its background (WCAG AA).
        var worst = JsonNode.Parse((await page.EvaluateAsync<System.Text.Json.JsonElement>(Contrast)).GetRawText())!.AsArray();
        Assert.All(worst, w => Assert.True((double)w!["ratio"]! >= 4.5, $"'{w["text"]}' has contrast {(double)w["ratio"]!:F2}"));
        // Both charts: named axes, and a legend outside the plot, inside the canvas.
        foreach (var chart in new[] { "#latency-chart", "#law-chart" })
        {
            var c = page.Locator(chart);
            var plot = JsonNode.Parse((await c.GetAttributeAsync("data-plot"))!)!;
            var legend = JsonNode.Parse((await c.GetAttributeAsync("data-legend"))!)!;
            Assert.False(string.IsNullOrWhiteSpace(await c.GetAttributeAsync("data-x-axis")), chart);
            Assert.False(string.IsNullOrWhiteSpace(await c.GetAttributeAsync("data-y-axis")), chart);
            Assert.True((double)legend["x"]! >= (double)plot["x"]! + (double)plot["w"]!, $"{chart}: the legend starts inside the plot");
            int width = int.Parse((await c.GetAttributeAsync("width"))!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True((double)legend["x"]! + (double)legend["w"]! <= width, $"{chart}: the legend runs off the canvas");
        }
        Directory.CreateDirectory(Path.Combine(Repo.Root, "artifacts"));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Repo.Root, "artifacts", "overlay-1280x900.png"), FullPage = true });
    }
}
