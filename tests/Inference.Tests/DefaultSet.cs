using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>A model set loaded once on the CPU provider and shared by a test class.</summary>
public abstract class LoadedSet : IDisposable
{
    protected LoadedSet(string dir, bool rebindInputs = false)
    {
        Directory = dir;
        Models = ModelSet.Load(dir, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu) { RebindInputs = rebindInputs }));
        Golden = new Golden(dir);
    }

    public string Directory { get; }
    public ModelSet Models { get; }
    public Golden Golden { get; }
    public LanguageModel Decoder => Models.Decoder(Models.Manifest.Default.Decoder);

    public void Dispose() => Models.Dispose();
}

/// <summary>models/tiny-random: the random-weight contract set.</summary>
public sealed class DefaultSet() : LoadedSet(Repo.TinyModels);

/// <summary>models/default: the trained world set.</summary>
public sealed class TrainedSet() : LoadedSet(Repo.TrainedModels);

/// <summary>
/// models/default with every binding bound again before each run, as on CUDA and DirectML, where ONNX Runtime copies
/// a host input when it is bound (Inference/Binding.cs): the GPU providers' binding path, run on the CPU.
/// </summary>
public sealed class ReboundTrainedSet() : LoadedSet(Repo.TrainedModels, rebindInputs: true);
