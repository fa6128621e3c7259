using Assistant.Inference.Ocr;

namespace Assistant.Inference.Tests.Ocr;

public sealed class OcrModelsTests
{
    private static string CopyModels()
    {
        var source = OcrModels.Locate();
        var dir = Path.Combine(Path.GetTempPath(), "assistant-tests", "ocr-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { source.Detector, source.Recognizer, source.Dictionary })
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void The_fetched_models_match_their_pinned_hashes()
    {
        var models = OcrModels.Locate();
        Assert.True(File.Exists(models.Detector) && File.Exists(models.Recognizer) && File.Exists(models.Dictionary));
    }

    [Fact]
    public void A_missing_model_names_the_file_and_how_to_fetch_it()
    {
        var dir = CopyModels();
        File.Delete(Path.Combine(dir, OcrModels.RecognizerFile));
        var e = Assert.Throws<InferenceException>(() => OcrModels.Locate(dir));
        Assert.Contains(OcrModels.RecognizerFile, e.Message);
        Assert.Contains("fetch_models.sh", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_corrupt_model_fails_its_hash_check_before_it_loads()
    {
        var dir = CopyModels();
        var path = Path.Combine(dir, OcrModels.DetectorFile);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InferenceException>(() => OcrModels.Locate(dir));
        Assert.Contains("SHA-256", e.Message);
        Assert.Contains(OcrModels.DetectorFile, e.Message);
    }

    [Fact]
    public void A_truncated_dictionary_fails_its_hash_check()
    {
        var dir = CopyModels();
        var path = Path.Combine(dir, OcrModels.DictionaryFile);
        File.WriteAllText(path, "a\nb\n");
        Assert.Contains("SHA-256", Assert.Throws<InferenceException>(() => OcrModels.Locate(dir)).Message);
    }
}
