using Assistant.Inference.Audio;

namespace Assistant.Engine;

/// <summary>An utterance and, when a recogniser heard words in it, the question they make.</summary>
public sealed record HeardUtterance(Utterance Span, string? Query);

/// <summary>
/// Speech to questions: voice activity cuts the audio into utterances, the recogniser (if any) is called
/// once per utterance on exactly its samples, and its text goes through the same check as a typed
/// question (<see cref="AskPipeline.ValidateQuery"/>); an utterance that reads as nothing has no query.
/// </summary>
public static class SpeechQueries
{
    public static async Task<IReadOnlyList<HeardUtterance>> HearAsync(SileroVad vad, float[] samples, VadOptions options,
        ISpeechRecognizer? recognizer, CancellationToken cancellation = default)
    {
        var heard = new List<HeardUtterance>();
        foreach (var u in UtteranceCutter.Cut(vad, samples, options))
        {
            string? query = null;
            if (recognizer is not null)
            {
                int from = (int)Math.Round(u.Start * SileroVad.SampleRate), to = Math.Min(samples.Length, (int)Math.Round(u.End * SileroVad.SampleRate));
                var text = await recognizer.TranscribeAsync(samples[from..to], cancellation);
                try
                {
                    query = AskPipeline.ValidateQuery(text);
                }
                catch (EngineException)
                {
                    query = null;  // nothing said, or an absurdly long hallucination: not a question
                }
            }
            heard.Add(new HeardUtterance(u, query));
        }
        return heard;
    }
}
