using Microsoft.ML.OnnxRuntime;

namespace Assistant.Inference.Audio;

/// <summary>
/// Silero VAD v5 (from the npm package @ricky0123/vad-web 0.0.31, fetched by tools/fetch_models.sh vad):
/// the probability that each 32 ms frame of 16 kHz mono audio is speech. The model is recurrent: its
/// state (2, 1, 128) and the last 64 samples of the previous frame are carried between calls, so frames
/// must come in order; <see cref="Reset"/> starts a new stream. Owns its session and buffers.
/// </summary>
public sealed class SileroVad : IDisposable
{
    /// <summary>The rate the model takes.</summary>
    public const int SampleRate = 16_000;
    /// <summary>Samples per frame the model takes at 16 kHz (32 ms).</summary>
    public const int FrameSamples = 512;
    private const int ContextSamples = 64;
    /// <summary>The model's file name.</summary>
    public const string File = "silero_vad_v5.onnx";
    /// <summary>The SHA-256 the fetched file must have.</summary>
    public const string PinnedSha256 = "2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f";
    private static readonly string[] InputNames = ["input", "state", "sr"];
    private static readonly string[] OutputNames = ["output", "stateN"];
    private readonly InferenceSession _session;
    private readonly string _path;
    private readonly float[] _input = new float[ContextSamples + FrameSamples];
    private readonly float[] _state = new float[2 * 128], _stateOut = new float[2 * 128];
    private readonly float[] _probability = new float[1];
    private readonly long[] _sr = [SampleRate];
    private readonly OrtValue _inputValue, _stateValue, _srValue, _probabilityValue, _stateOutValue;
    private readonly RunOptions _run = new();

    private SileroVad(InferenceSession session, string path)
    {
        _session = session;
        _path = path;
        _inputValue = OrtValue.CreateTensorValueFromMemory(_input, [1, _input.Length]);
        _stateValue = OrtValue.CreateTensorValueFromMemory(_state, [2, 1, 128]);
        _srValue = OrtValue.CreateTensorValueFromMemory(_sr, []);
        _probabilityValue = OrtValue.CreateTensorValueFromMemory(_probability, [1, 1]);
        _stateOutValue = OrtValue.CreateTensorValueFromMemory(_stateOut, [2, 1, 128]);
    }

    /// <summary>Where the model is cached ($ASSISTANT_VAD_MODELS, else the user's cache).</summary>
    public static string DefaultDirectory() => PinnedFile.CacheDirectory("ASSISTANT_VAD_MODELS", Path.Combine("vad", "silero-v5"));

    /// <summary>Loads the hash-checked model from <paramref name="directory"/> (default <see cref="DefaultDirectory"/>).</summary>
    public static SileroVad Load(SessionFactory factory, string? directory = null)
    {
        var path = PinnedFile.Verify(Path.Combine(directory ?? DefaultDirectory(), File), PinnedSha256,
            "run tools/fetch_models.sh vad, or set ASSISTANT_VAD_MODELS");
        return new SileroVad(factory.Create(path), path);
    }

    /// <summary>Forgets the previous audio: the next frame starts a new stream.</summary>
    public void Reset()
    {
        Array.Clear(_input);
        Array.Clear(_state);
    }

    /// <summary>The speech probability of the next <see cref="FrameSamples"/> samples (16 kHz mono, [-1, 1]).</summary>
    public float Process(ReadOnlySpan<float> frame)
    {
        if (frame.Length != FrameSamples)
            throw new InferenceException($"a VAD frame is {FrameSamples} samples at 16 kHz, got {frame.Length}");
        _input.AsSpan(FrameSamples, ContextSamples).CopyTo(_input);  // the previous frame's tail is this one's context
        frame.CopyTo(_input.AsSpan(ContextSamples));
        OrtCall.Run(_session, _run, InputNames, [_inputValue, _stateValue, _srValue], OutputNames, [_probabilityValue, _stateOutValue], _path);
        _stateOut.CopyTo(_state, 0);
        return _probability[0];
    }

    /// <summary>Frees the session and its state tensors.</summary>
    public void Dispose()
    {
        _inputValue.Dispose();
        _stateValue.Dispose();
        _srValue.Dispose();
        _probabilityValue.Dispose();
        _stateOutValue.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}
