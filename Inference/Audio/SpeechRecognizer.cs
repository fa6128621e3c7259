using Whisper.net;

namespace Assistant.Inference.Audio;

/// <summary>Turns one utterance (16 kHz mono samples) into text.</summary>
public interface ISpeechRecognizer : IDisposable
{
    /// <summary>The words in <paramref name="samples"/> (16 kHz mono); empty when there are none.</summary>
    Task<string> TranscribeAsync(float[] samples, CancellationToken cancellation = default);
}

/// <summary>
/// Whisper (whisper.cpp through Whisper.net 1.9.1) with a ggml model the user supplies: none can be
/// downloaded by the assistant, and no package ships one. Owns the native model and processor.
/// </summary>
public sealed class WhisperRecognizer : ISpeechRecognizer
{
    /// <summary>Where a model comes from, for help text.</summary>
    public const string WhereToGetOne = "a ggml Whisper model, e.g. ggml-base.en.bin from https://huggingface.co/ggerganov/whisper.cpp";
    private readonly WhisperFactory _factory;
    private readonly WhisperProcessor _processor;

    private WhisperRecognizer(WhisperFactory factory, WhisperProcessor processor)
    {
        _factory = factory;
        _processor = processor;
    }

    /// <summary>Loads <paramref name="modelPath"/>; null, missing or unreadable is a one-line error saying what is needed.</summary>
    public static WhisperRecognizer Load(string? modelPath, string language = "auto")
    {
        if (modelPath is null)
            throw new InferenceException($"speech recognition needs --asr-model PATH: {WhereToGetOne} (none ships with the assistant)");
        if (!File.Exists(modelPath))
            throw new InferenceException($"ASR model not found: {modelPath} (needs {WhereToGetOne})");
        var factory = WhisperFactory.FromPath(modelPath);
        try
        {
            return new WhisperRecognizer(factory, factory.CreateBuilder().WithLanguage(language).Build());
        }
        catch (Exception e) when (e is WhisperModelLoadException or InvalidOperationException)
        {
            factory.Dispose();
            throw new InferenceException($"cannot load {modelPath} as a Whisper model ({e.Message}); it needs {WhereToGetOne}");
        }
    }

    /// <summary>The words in <paramref name="samples"/> (16 kHz mono), the segments joined; empty when there are none.</summary>
    public async Task<string> TranscribeAsync(float[] samples, CancellationToken cancellation = default)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var segment in _processor.ProcessAsync(samples, cancellation))
            text.Append(segment.Text);
        return text.ToString().Trim();
    }

    /// <summary>Frees the model.</summary>
    public void Dispose()
    {
        _processor.Dispose();
        _factory.Dispose();
    }
}
