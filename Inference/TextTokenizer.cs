using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Assistant.Inference;

/// <summary>
/// The model set's tokenizer through Microsoft.ML.Tokenizers: a byte-level BPE (vocab.json + merges.txt, the Qwen2
/// format) or a SentencePiece BPE with byte fallback (tokenizer.model, Llama 2's and Vicuna's), plus the special-token
/// ids from the manifest. User text is encoded without special-token parsing, so a query containing
/// "&lt;|im_end|&gt;" cannot forge a prompt boundary. Every id's raw bytes are kept in one table, so decoding and
/// streaming are one code path for both kinds.
/// </summary>
public sealed class TextTokenizer
{
    /// <summary>Qwen2's pre-tokenizer split.</summary>
    public const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// SmolLM2's pre-tokenizer as one regex: Hugging Face's Sequence of Digits (each digit alone) and GPT-2's ByteLevel
    /// regex within the text between digits. GPT-2's " ?\p{N}+" becomes "\p{N}", and a run of spaces before a digit is
    /// one piece (it ends its stretch of text, where GPT-2's "\s+(?!\S)" takes the whole run). Checked against the
    /// importer's two-step split and llama.cpp's "smollm" pre-tokenizer in the tests.
    /// </summary>
    public const string SmolLmPattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+";

    /// <summary>The pre-tokenizers' regexes, compiled once for the process (a Regex is immutable and safe to share
    /// between threads), not once per loaded set.</summary>
    private static readonly Regex Qwen2Split = new(Qwen2Pattern, RegexOptions.Compiled);

    private static readonly Regex SmolLmSplit = new(SmolLmPattern, RegexOptions.Compiled);

    /// <summary>SentencePiece's escaped space, U+2581.</summary>
    private const char Space = '\u2581';

    private readonly BpeTokenizer? _bpe;
    private readonly SentencePieceTokenizer? _pieces;
    private readonly byte[][] _tokenBytes;  // id -> raw bytes; special tokens map to their text
    private readonly HashSet<int> _specialIds;

    private TextTokenizer(BpeTokenizer? bpe, SentencePieceTokenizer? pieces, byte[][] tokenBytes, IReadOnlyDictionary<string, int> special)
    {
        _bpe = bpe;
        _pieces = pieces;
        _tokenBytes = tokenBytes;
        _wholeText = new string?[tokenBytes.Length];
        _wholeTextKnown = new bool[tokenBytes.Length];
        Special = special;
        _specialIds = [.. special.Values];
    }

    /// <summary>Special token text to id.</summary>
    public IReadOnlyDictionary<string, int> Special { get; }

    /// <summary>Number of ids, special tokens included.</summary>
    public int Count => _tokenBytes.Length;

    /// <summary>
    /// Whether decoded text drops the space that begins it: SentencePiece writes a word's leading space into the
    /// word's token ("▁Yes"), so an answer's first token starts with one, which its own decoder removes.
    /// </summary>
    public bool DropsLeadingSpace => _pieces is not null;

    /// <summary>The tokenizer of <paramref name="spec"/> from <paramref name="directory"/>; a missing or malformed file is one <see cref="InferenceException"/>.</summary>
    public static TextTokenizer Load(string directory, TokenizerSpec spec) => spec.PreTokenizer switch
    {
        TokenizerSpec.Qwen2 => LoadByteLevel(directory, spec, Qwen2Split),
        TokenizerSpec.SmolLm => LoadByteLevel(directory, spec, SmolLmSplit),
        TokenizerSpec.SentencePiece => LoadSentencePiece(directory, spec),
        _ => throw new InferenceException($"tokenizer pre_tokenizer '{spec.PreTokenizer}' is not supported (this build knows '{TokenizerSpec.Qwen2}', '{TokenizerSpec.SmolLm}' and '{TokenizerSpec.SentencePiece}')"),
    };

    private static TextTokenizer LoadByteLevel(string directory, TokenizerSpec spec, Regex split)
    {
        // Confined to the set's folder, regular files, under a size cap: a manifest cannot make the loader read
        // /etc/passwd, /dev/zero or a FIFO.
        var vocabPath = SetFile.Resolve(directory, spec.Vocab ?? throw new InferenceException("manifest.json tokenizer has no vocab file"), "tokenizer file");
        var mergesPath = Capped(SetFile.Resolve(directory, spec.Merges ?? throw new InferenceException("manifest.json tokenizer has no merges file"), "tokenizer file"));

        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(SetFile.ReadText(vocabPath, SetFile.MaxTokenizerBytes, "tokenizer file"))
                    ?? throw new InferenceException($"{vocabPath} is empty");
        }
        catch (JsonException e)
        {
            throw new InferenceException($"{vocabPath} is not a JSON token -> id map: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }

        CheckIds(vocab, spec);
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocabPath, mergesPath)
            {
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(split, null),
            });
        }
        // The tokenizers library reads vocab.json again itself, as raw UTF-8: a byte that is not UTF-8 got past the
        // parse above (read as text, it became U+FFFD) and is a JsonException here.
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or FormatException or JsonException)
        {
            throw new InferenceException($"cannot read tokenizer {vocabPath} + {mergesPath}: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }

        var bytes = Table(vocab, spec);
        var unmap = ByteLevel.CharToByte;
        foreach (var (token, id) in vocab)
        {
            var raw = new byte[token.Length];
            for (int i = 0; i < token.Length; i++)
                raw[i] = unmap.TryGetValue(token[i], out var b) ? b
                    : throw new InferenceException($"{vocabPath}: token '{token}' is not byte-level BPE text");
            bytes[id] = raw;
        }
        return new TextTokenizer(bpe, null, Finish(bytes, spec, textId: null), spec.SpecialTokens);
    }

    private static TextTokenizer LoadSentencePiece(string directory, TokenizerSpec spec)
    {
        var modelPath = Capped(SetFile.Resolve(directory, spec.Model ?? throw new InferenceException("manifest.json tokenizer has no model file (tokenizer.model)"), "tokenizer file"));
        SentencePieceTokenizer pieces;
        try
        {
            using var stream = File.OpenRead(modelPath);
            pieces = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        // The model is a protobuf message: a damaged one fails in the parser or in the library's own checks (a model
        // type it does not implement is an ArgumentException).
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or FormatException
                                      or NotSupportedException or IndexOutOfRangeException or OverflowException)
        {
            throw new InferenceException($"cannot read SentencePiece model {modelPath}: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }
        if (!pieces.ByteFallback)
            throw new InferenceException($"SentencePiece model {modelPath} has no byte fallback: text outside its pieces would become <unk> (Llama 2's models have it)");
        var vocab = pieces.Vocabulary;
        CheckIds(vocab, spec);
        var bytes = Table(vocab, spec);
        foreach (var (piece, id) in vocab)
            bytes[id] = piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
                        && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var b)
                ? [b]
                : Encoding.UTF8.GetBytes(piece.Replace(Space, ' '));
        // The model's own control pieces (<s>, </s>) and its unknown piece have no text of their own; the manifest
        // names them as special tokens.
        var control = new HashSet<int> { pieces.BeginningOfSentenceId, pieces.EndOfSentenceId, pieces.UnknownId };
        foreach (var id in control)
            if ((uint)id < (uint)bytes.Length) bytes[id] = [];
        return new TextTokenizer(null, pieces, Finish(bytes, spec, textId: id => !control.Contains(id)), spec.SpecialTokens);
    }

    /// <summary>A tokenizer file the library reads itself, refused past the size cap before it is opened.</summary>
    private static string Capped(string path) =>
        new FileInfo(path).Length <= SetFile.MaxTokenizerBytes ? path
            : throw new InferenceException($"tokenizer file {path} is larger than the {SetFile.MaxTokenizerBytes >> 20} MB limit");

    /// <summary>
    /// Ids are checked before the id table is allocated from them: a negative one, or one far beyond the tokens
    /// there are (1,000,000,000 once grew the table past 3 GB), is refused.
    /// </summary>
    private static void CheckIds(IReadOnlyDictionary<string, int> vocab, TokenizerSpec spec)
    {
        int limit = 4 * (vocab.Count + spec.SpecialTokens.Count) + 1024;
        foreach (var (token, id) in vocab.Concat(spec.SpecialTokens))
            if (id < 0 || id >= limit)
                throw new InferenceException($"token id {id} of '{SessionFactory.FirstLine(token)}' is out of range: ids run from 0 and must stay near the {vocab.Count + spec.SpecialTokens.Count} tokens there are");
    }

    private static byte[][] Table(IReadOnlyDictionary<string, int> vocab, TokenizerSpec spec) =>
        new byte[Math.Max(vocab.Values.DefaultIfEmpty(-1).Max(), spec.SpecialTokens.Values.DefaultIfEmpty(-1).Max()) + 1][];

    /// <summary>
    /// The special tokens' text in the table, and no text for every id without any. A special token may not take an
    /// id the vocabulary uses for text (<paramref name="textId"/>: whether a vocabulary id is text; null: every one is).
    /// </summary>
    private static byte[][] Finish(byte[][] bytes, TokenizerSpec spec, Func<int, bool>? textId)
    {
        foreach (var (token, id) in spec.SpecialTokens)
        {
            if (id < 0 || (bytes[id] is not null && (textId is null || textId(id))))
                throw new InferenceException($"special token {token} has id {id}, which is negative or taken by the vocabulary");
            bytes[id] = Encoding.UTF8.GetBytes(token);
        }
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] ??= [];
        return bytes;
    }

    /// <summary>
    /// Ids of plain text (no special tokens are recognised in it). <paramref name="startsFragment"/>: the text begins
    /// a run of text (the prompt's start, or right after a special token or the image), where SentencePiece adds its
    /// dummy prefix, as llama.cpp and Hugging Face's Llama tokenizer do for every such run; text that continues a run
    /// gets none. A byte-level BPE has no prefix and ignores it.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool startsFragment = false)
    {
        if (_pieces is null) return _bpe!.EncodeToIds(text);
        if (text.Length == 0) return [];
        // Llama 2's normaliser is the identity with spaces escaped, done here so that the prefix is the caller's
        // choice: the library adds one to every call when it normalises.
        var escaped = (startsFragment ? Space.ToString() : "") + text.Replace(' ', Space);
        return _pieces.EncodeToIds(escaped, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: false, considerNormalization: false);
    }

    /// <summary>
    /// Ids of a set's own template text (a chat template's pieces): its special tokens are recognised, longest
    /// first, and the text between them is plain text; <paramref name="startsFragment"/> says whether the text's
    /// first run begins a fragment, and every run after a special token does (<see cref="Encode"/>). Never for user
    /// text, which <see cref="Encode"/> takes.
    /// </summary>
    public int[] EncodeTemplate(string text, bool startsFragment = false)
    {
        var ids = new List<int>();
        var specials = Special.Keys.OrderByDescending(k => k.Length).ToArray();
        int start = 0, i = 0;
        bool fresh = startsFragment;
        while (i < text.Length)
        {
            var hit = specials.FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (hit is null) { i++; continue; }
            if (i > start) ids.AddRange(Encode(text[start..i], fresh));
            ids.Add(Special[hit]);
            i += hit.Length;
            start = i;
            fresh = true;
        }
        if (start < text.Length) ids.AddRange(Encode(text[start..], fresh));
        return [.. ids];
    }

    /// <summary>The id of a special token named in the manifest.</summary>
    public int SpecialId(string token) =>
        Special.TryGetValue(token, out var id) ? id : throw new InferenceException($"tokenizer has no special token {token}");

    /// <summary>Whether <paramref name="id"/> is a special token.</summary>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    /// <summary>The raw bytes of one token. Valid as long as this tokenizer lives.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) =>
        (uint)id < (uint)_tokenBytes.Length ? _tokenBytes[id] : throw new ArgumentOutOfRangeException(nameof(id), id, "token id outside the vocabulary");

    /// <summary>Whole-text decode (special tokens, and ids past the tokenizer's, skipped).</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var buffer = new List<byte>();
        foreach (var id in ids)
            if ((uint)id < (uint)_tokenBytes.Length && !IsSpecial(id)) buffer.AddRange(_tokenBytes[id]);
        var text = Encoding.UTF8.GetString(buffer.ToArray());
        return DropsLeadingSpace && text.StartsWith(' ') ? text[1..] : text;
    }

    private readonly string?[] _wholeText;
    private readonly bool[] _wholeTextKnown;

    /// <summary>
    /// The token's text when its bytes are whole UTF-8 characters by themselves, else null; worked out on
    /// first use and kept, so streaming an answer makes no string per token. A benign race: two threads
    /// may both work out the same string.
    /// </summary>
    internal string? WholeText(int id)
    {
        if (!_wholeTextKnown[id])
        {
            try { _wholeText[id] = Strict.GetString(TokenBytes(id)); }
            catch (DecoderFallbackException) { _wholeText[id] = null; }
            _wholeTextKnown[id] = true;
        }
        return _wholeText[id];
    }

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A decoder for a token stream: text comes out as soon as its UTF-8 bytes are complete.</summary>
    public StreamingDetokenizer CreateStream() => new(this);

    /// <summary>GPT-2's byte-to-printable-character map, inverted.</summary>
    private static class ByteLevel
    {
        public static readonly IReadOnlyDictionary<char, byte> CharToByte = Build();

        private static Dictionary<char, byte> Build()
        {
            var keep = new List<int>();
            for (int b = '!'; b <= '~'; b++) keep.Add(b);
            for (int b = 0xA1; b <= 0xAC; b++) keep.Add(b);
            for (int b = 0xAE; b <= 0xFF; b++) keep.Add(b);
            var map = keep.ToDictionary(b => (char)b, b => (byte)b);
            int n = 0;
            for (int b = 0; b < 256; b++)
                if (!keep.Contains(b)) map[(char)(256 + n++)] = (byte)b;
            return map;
        }
    }
}

/// <summary>Turns token ids into text incrementally; a multi-byte character split across tokens waits for its end.</summary>
public sealed class StreamingDetokenizer(TextTokenizer tokenizer)
{
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private readonly char[] _chars = new char[64];
    private bool _clean = true;  // the UTF-8 decoder holds no bytes of an unfinished character
    private bool _begun;         // some text has come out (before it, a SentencePiece answer's leading space is dropped)

    /// <summary>The text that token <paramref name="id"/> completes (possibly empty). Special tokens give no text.</summary>
    public string Push(int id)
    {
        var text = Next(id);
        if (_begun || text.Length == 0) return text;
        _begun = true;
        return tokenizer.DropsLeadingSpace && text[0] == ' ' ? text[1..] : text;
    }

    private string Next(int id)
    {
        // Special tokens, and the padding rows a checkpoint's embedding has beyond its tokenizer (a random or badly
        // trained model can pick one), have no text.
        if (tokenizer.IsSpecial(id) || (uint)id >= (uint)tokenizer.Count) return "";
        // The common case: whole characters in, whole characters out; the token's own text, made once per id.
        if (_clean && tokenizer.WholeText(id) is { } whole) return whole;
        var bytes = tokenizer.TokenBytes(id);
        var sb = new StringBuilder();
        while (!bytes.IsEmpty)
        {
            _utf8.Convert(bytes, _chars, false, out int used, out int produced, out bool completed);
            sb.Append(_chars, 0, produced);
            bytes = bytes[used..];
            _clean = completed;
        }
        return sb.ToString();
    }
}
