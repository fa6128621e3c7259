namespace Assistant.Bench.Peers;

/// <summary>docs/peers_ttft.png: time to first token against V for the engine's compressors, llama.cpp's full-token time as a line.</summary>
internal static class Chart
{
    public static void Save(string path, string size, IReadOnlyList<Row> rows)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int colour = 0;
        foreach (var kind in new[] { "pool", "query", "full" })
        {
            var ps = rows.Where(r => r.Runtime == "ours" && r.Config == kind).OrderBy(r => r.VisualTokens).ToList();
            if (ps.Count == 0) continue;
            var s = plot.Add.Scatter(ps.Select(p => Math.Log2(p.VisualTokens)).ToArray(), ps.Select(p => p.TtftMs).ToArray(), palette.GetColor(colour++));
            s.LegendText = $"ours, {kind} (new picture)";
            var st = plot.Add.Scatter(ps.Select(p => Math.Log2(p.VisualTokens)).ToArray(), ps.Select(p => p.StaticTtftMs).ToArray(), palette.GetColor(colour - 1));
            st.LinePattern = ScottPlot.LinePattern.Dotted;
            st.LegendText = $"ours, {kind} (unchanged picture)";
        }
        var llama = rows.Single(r => r.Runtime == "llama.cpp");
        var line = plot.Add.HorizontalLine(llama.TtftMs, 2, ScottPlot.Colors.Black, ScottPlot.LinePattern.Dashed);
        line.LegendText = $"llama.cpp, all {llama.VisualTokens} visual tokens";
        plot.Title($"{size}: time to first answer token against visual tokens V (F32, this CPU)");
        plot.XLabel("log2 V");
        plot.YLabel("ms from frame to first token");
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        plot.SavePng(path, 900, 560);
    }
}
