using System.Text.Json;
using Assistant.Tests;

namespace Assistant.Inference.Tests;

/// <summary>
/// The engine's SentencePiece tokenizer (Microsoft.ML.Tokenizers on a tokenizer.model) against Debian's
/// python3-sentencepiece, an implementation we did not write, on the Llama 2-style model of a tiny llava-1.5
/// checkpoint (tools/make_hf_checkpoint.py --family llava-1.5: BPE, byte fallback, Llama 2's normaliser).
/// </summary>
public sealed class SentencePieceTokenizerTests : IClassFixture<SentencePieceTokenizerTests.Model>
{
    /// <summary>Plain words, the template's own text, spaces in runs and at the ends, digits, a newline, and text
    /// outside the tiny vocabulary that only byte fallback encodes: accents, an emoji, CJK, a control character.</summary>
    public static readonly string[] Texts =
    [
        "What is in this picture?",
        "USER: ",
        " ASSISTANT:",
        "\n",
        "  two  spaces and a trailing one ",
        "How many red circles are there? 3 or 12.",
        "Un café crème, s'il vous plaît.",
        "Größe und Maß",
        "an emoji 🙂 and 猫 and a tab\there",
        "\u0001\u007f bytes",
        "▁ already escaped",
    ];

    /// <summary>The checkpoint's tokenizer.model, loaded as a set loads it, and the library's ids for <see cref="Texts"/>.</summary>
    public sealed class Model
    {
        public Model()
        {
            Folder = HfCheckpoints.MakeCheckpoint(Path.GetTempPath(), "--family", "llava-1.5");
            var special = new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
            Tokenizer = TextTokenizer.Load(Folder, new TokenizerSpec(TokenizerSpec.SentencePiece, special, Model: "tokenizer.model"));
            // With its dummy prefix (as a prompt's fragment begins), without it (the model's proto edited, as the
            // importer does), and decoding.
            const string script = """
                import json, sys
                import sentencepiece as spm
                from sentencepiece import sentencepiece_model_pb2 as pb
                data = open(sys.argv[1], "rb").read()
                texts = json.loads(sys.argv[2])
                prefixed = spm.SentencePieceProcessor(model_proto=data)
                proto = pb.ModelProto(); proto.ParseFromString(data); proto.normalizer_spec.add_dummy_prefix = False
                plain = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
                print(json.dumps({"prefixed": [prefixed.encode(t) for t in texts], "plain": [plain.encode(t) for t in texts],
                                  "decoded": [prefixed.decode(prefixed.encode(t)) for t in texts]}))
                """;
            var output = Tool.Run("/usr/bin/python3", ["-c", script, Path.Combine(Folder, "tokenizer.model"), JsonSerializer.Serialize(Texts)]);
            Library = JsonDocument.Parse(output).RootElement.Clone();
        }

        public string Folder { get; }

        public TextTokenizer Tokenizer { get; }

        public JsonElement Library { get; }

        public int[] Ids(string kind, int i) => Library.GetProperty(kind)[i].EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    private readonly Model _model;

    public SentencePieceTokenizerTests(Model model) => _model = model;

    public static TheoryData<int> Indices => new(Enumerable.Range(0, Texts.Length));

    [Theory]
    [MemberData(nameof(Indices))]
    public void EncodesAsTheSentencePieceLibraryDoes(int i)
    {
        Assert.Equal(_model.Ids("prefixed", i), _model.Tokenizer.Encode(Texts[i], startsFragment: true));
        Assert.Equal(_model.Ids("plain", i), _model.Tokenizer.Encode(Texts[i], startsFragment: false));
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void DecodesAsTheSentencePieceLibraryDoes(int i)
    {
        var expected = _model.Library.GetProperty("decoded")[i].GetString();
        Assert.Equal(expected, _model.Tokenizer.Decode(_model.Ids("prefixed", i)));
    }

    [Fact]
    public void ByteFallbackIsUsedWhereThePiecesEnd()
    {
        // The tiny model has no piece for the emoji: its four UTF-8 bytes are four byte pieces, <0xF0> first.
        var ids = _model.Tokenizer.Encode("🙂");
        Assert.Equal(4, ids.Count);
        Assert.Equal([0xF0], _model.Tokenizer.TokenBytes(ids[0]).ToArray());
    }

    [Fact]
    public void StreamingDropsTheAnswersLeadingSpaceAndHoldsSplitCharacters()
    {
        var ids = _model.Tokenizer.Encode("Un café 🙂", startsFragment: true);
        var stream = _model.Tokenizer.CreateStream();
        var pieces = ids.Select(stream.Push).ToList();
        Assert.Equal("Un café 🙂", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));  // a character split over byte pieces waits whole
    }

    [Fact]
    public void ControlPiecesAreSpecialAndHaveNoText()
    {
        var tok = _model.Tokenizer;
        Assert.Equal(1, tok.SpecialId("<s>"));
        Assert.Equal("", tok.Decode([1, 2]));
        // User text naming a control piece is text, never the control id.
        Assert.DoesNotContain(1, tok.Encode("<s> hello </s>", startsFragment: true));
    }

    [Fact]
    public void ADamagedModelIsOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("spm-damaged").FullName;
        try
        {
            var bytes = File.ReadAllBytes(Path.Combine(_model.Folder, "tokenizer.model"));
            File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), bytes.AsSpan(0, bytes.Length / 3).ToArray());
            var e = Assert.Throws<InferenceException>(() => TextTokenizer.Load(dir, new TokenizerSpec(TokenizerSpec.SentencePiece, new Dictionary<string, int>(), Model: "tokenizer.model")));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains("tokenizer.model", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
