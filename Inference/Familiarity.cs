namespace Assistant.Inference;

/// <summary>
/// How familiar a picture looks to a world set's own vision encoder (<see cref="DomainSpec"/>): its patch features
/// averaged to one vector per picture, each channel standardised by the held-out scenes' mean and deviation, and the
/// mean of the squares taken. About 1 for the kind of scene the set was trained on; far above it for a photograph, a
/// test card, a black or a noise picture. Costs one pass over the features (patches x dim), only when the encoder ran.
/// </summary>
public static class Familiarity
{
    /// <summary>The averaged feature vector of one picture's <paramref name="features"/> (patches x dim, row-major) into <paramref name="pooled"/>.</summary>
    public static void Pool(ReadOnlySpan<float> features, int patches, int dim, Span<float> pooled)
    {
        pooled.Clear();
        for (int p = 0; p < patches; p++)
        {
            var row = features.Slice(p * dim, dim);
            for (int j = 0; j < dim; j++) pooled[j] += row[j];
        }
        for (int j = 0; j < dim; j++) pooled[j] /= patches;
    }

    /// <summary>The score of a picture whose averaged features are <paramref name="pooled"/>.</summary>
    public static double Score(ReadOnlySpan<float> pooled, DomainSpec domain)
    {
        double sum = 0;
        for (int j = 0; j < pooled.Length; j++)
        {
            double z = (pooled[j] - domain.Mean[j]) / domain.Std[j];
            sum += z * z;
        }
        return sum / pooled.Length;
    }
}
