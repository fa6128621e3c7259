namespace Assistant.Inference.Ocr;

/// <summary>
/// Greedy CTC decoding over PaddleOCR's classes: 0 = blank, 1..N = the dictionary's characters, N + 1 = space.
/// The best class per step, repeats collapsed, blanks dropped. The Chinese-trained recogniser often lets the
/// space between two words lose to the blank; where the space class reached <see cref="SpaceProbability"/>
/// anywhere between two characters, the space is put back (threshold chosen on rendered lines of another
/// seed than the test's; see docs/PERFORMANCE.md).
/// </summary>
public sealed class CtcDecoder(IReadOnlyList<string> dictionary, float spaceProbability = 0.1f)
{
    private readonly string[] _classes = ["", .. dictionary, " "];

    /// <summary>The recogniser's classes: blank, the dictionary, space.</summary>
    public IReadOnlyList<string> Classes => _classes;

    /// <summary>A space is restored where its probability reaches this.</summary>
    public float SpaceProbability { get; } = spaceProbability;

    /// <param name="probs">(steps, classes) row-major probabilities.</param>
    /// <param name="steps">Time steps (rows of <paramref name="probs"/>).</param>
    public RecognizedText Decode(ReadOnlySpan<float> probs, int steps)
    {
        int classes = _classes.Length;
        if (probs.Length < steps * classes)
            throw new InferenceException($"CTC input has {probs.Length} values, expected {steps} x {classes}");
        var text = new System.Text.StringBuilder();
        double confidence = 0;
        int emitted = 0, previous = 0, space = classes - 1;
        float spaceSince = 0;  // the highest space probability since the last character
        for (int t = 0; t < steps; t++)
        {
            var row = probs.Slice(t * classes, classes);
            int best = 0;
            float bestP = row[0];
            for (int c = 1; c < classes; c++)
                if (row[c] > bestP) { bestP = row[c]; best = c; }
            if (best != 0 && best != previous)
            {
                if (best != space && text.Length > 0 && text[^1] != ' ' && spaceSince >= SpaceProbability) text.Append(' ');
                text.Append(_classes[best]);
                confidence += bestP;
                emitted++;
                spaceSince = 0;
            }
            else spaceSince = Math.Max(spaceSince, row[space]);
            previous = best;
        }
        for (int i = 0; i < text.Length; i++) text[i] = ToAscii(text[i]);
        return new RecognizedText(text.ToString(), emitted == 0 ? 1f : (float)(confidence / emitted));
    }

    /// <summary>
    /// The dictionary is Chinese-first: it holds full-width forms and CJK punctuation that render like ASCII on
    /// a Latin screen. They map to ASCII here (by table: the build runs with invariant globalization, so
    /// string.Normalize cannot do it).
    /// </summary>
    public static char ToAscii(char c) => c switch
    {
        >= '\uFF01' and <= '\uFF5E' => (char)(c - 0xFEE0),
        '\u3000' => ' ',
        '\u3002' => '.',
        '\u3001' => ',',
        '\u201C' or '\u201D' => '"',
        '\u2018' or '\u2019' => '\'',
        _ => c,
    };
}
