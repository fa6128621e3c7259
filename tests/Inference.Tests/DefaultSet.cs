using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>The default set loaded once on the CPU provider and shared by a test class.</summary>
public sealed class DefaultSet : IDisposable
{
    public DefaultSet() => Models = ModelSet.Load(Repo.DefaultModels, new SessionFactory(new SessionConfig(ExecutionProvider.Cpu)));

    public ModelSet Models { get; }

    public LanguageModel Decoder => Models.Decoder(Models.Manifest.Default.Decoder);

    public void Dispose() => Models.Dispose();
}
