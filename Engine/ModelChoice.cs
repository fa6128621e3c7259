namespace Assistant.Engine;

/// <summary>
/// One configuration of a set: which decoder answers, which compressor cuts the picture, and to how many visual
/// tokens. The one type for the triple above the inference layer: the manifest's default as Engine shows it, what a
/// request resolves to, each of the planner's candidates, what a live session runs and each frame's report. (The
/// manifest's own record, <see cref="Inference.DefaultSpec"/>, is the file format; <see cref="Of"/> is the one bridge.)
/// </summary>
/// <param name="Decoder">The decoder's name.</param>
/// <param name="Compressor">The compressor's kind.</param>
/// <param name="Tokens">V, the visual tokens per picture.</param>
public sealed record ModelChoice(string Decoder, string Compressor, int Tokens)
{
    /// <summary>The manifest's default.</summary>
    internal static ModelChoice Of(Inference.DefaultSpec spec) => new(spec.Decoder, spec.Compressor, spec.Tokens);

    /// <summary>"decoder + compressor V=n", as every command and the HUD write it.</summary>
    public override string ToString() => $"{Decoder} + {Compressor} V={Tokens}";
}
