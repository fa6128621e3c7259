namespace Assistant.Tests;

/// <summary>Fuzz cases measure memory with the process's allocation counter, so nothing else may run beside them.</summary>
[CollectionDefinition("fuzz", DisableParallelization = true)]
public sealed class FuzzCollection;
