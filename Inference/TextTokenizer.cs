using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Assistant.Inference;

/// <summary>
/// The model set's byte-level BPE tokenizer (vocab.json + merges.txt, the Qwen2 format) through
/// Microsoft.ML.Tokenizers, plus the special-token ids from the manifest. User text is encoded without
/// special-token parsing, so a query containing "&lt;|im_end|&gt;" cannot forge a prompt boundary.
/// </summary>
public sealed class TextTokenizer
{
    /// <summary>Qwen2's pre-tokenizer split.</summary>
    public const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The pre-tokenizer's regex, compiled once for the process (a Regex is immutable and safe to share
    /// between threads), not once per loaded set.</summary>
    private static readonly Regex Qwen2Split = new(Qwen2Pattern, RegexOptions.Compiled);

    private readonly BpeTokenizer _bpe;
    private readonly byte[][] _tokenBytes;  // id -> raw bytes; special tokens map to their text

    private TextTokenizer(BpeTokenizer bpe, byte[][] tokenBytes, IReadOnlyDictionary<string, int> special)
    {
        _bpe = bpe;
        _tokenBytes = tokenBytes;
        _wholeText = new string?[tokenBytes.Length];
        _wholeTextKnown = new bool[tokenBytes.Length];
        Special = special;
    }

    /// <summary>Special token text to id.</summary>
    public IReadOnlyDictionary<string, int> Special { get; }

    /// <summary>Number of ids, special tokens included.</summary>
    public int Count => _tokenBytes.Length;

    /// <summary>The tokenizer of <paramref name="spec"/> from <paramref name="directory"/>; a missing or malformed file is one <see cref="InferenceException"/>.</summary>
    public static TextTokenizer Load(string directory, TokenizerSpec spec)
    {
        if (spec.PreTokenizer != "qwen2")
            throw new InferenceException($"tokenizer pre_tokenizer '{spec.PreTokenizer}' is not supported (this build knows 'qwen2')");
        // Confined to the set's folder, regular files, under a size cap: a manifest cannot make the loader read
        // /etc/passwd, /dev/zero or a FIFO.
        var vocabPath = SetFile.Resolve(directory, spec.Vocab, "tokenizer file");
        var mergesPath = SetFile.Resolve(directory, spec.Merges, "tokenizer file");
        if (new FileInfo(mergesPath).Length > SetFile.MaxTokenizerBytes)
            throw new InferenceException($"tokenizer file {mergesPath} is larger than the {SetFile.MaxTokenizerBytes >> 20} MB limit");

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

        // Ids are checked before the id table is allocated from them: a negative one, or one far beyond the tokens
        // there are (1,000,000,000 once grew the table past 3 GB), is refused.
        int limit = 4 * (vocab.Count + spec.SpecialTokens.Count) + 1024;
        foreach (var (token, id) in vocab.Concat(spec.SpecialTokens))
            if (id < 0 || id >= limit)
                throw new InferenceException($"token id {id} of '{SessionFactory.FirstLine(token)}' is out of range: ids run from 0 and must stay near the {vocab.Count + spec.SpecialTokens.Count} tokens there are");
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocabPath, mergesPath)
            {
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(Qwen2Split, null),
            });
        }
        // The tokenizers library reads vocab.json again itself, as raw UTF-8: a byte that is not UTF-8 got past the
        // parse above (read as text, it became U+FFFD) and is a JsonException here.
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or FormatException or JsonException)
        {
            throw new InferenceException($"cannot read tokenizer {vocabPath} + {mergesPath}: {SessionFactory.FirstLine(e.Message)}", inner: e);
        }

        int count = Math.Max(vocab.Values.DefaultIfEmpty(-1).Max(), spec.SpecialTokens.Values.DefaultIfEmpty(-1).Max()) + 1;
        var bytes = new byte[count][];
        var unmap = ByteLevel.CharToByte;
        foreach (var (token, id) in vocab)
        {
            var raw = new byte[token.Length];
            for (int i = 0; i < token.Length; i++)
                raw[i] = unmap.TryGetValue(token[i], out var b) ? b
                    : throw new InferenceException($"{vocabPath}: token '{token}' is not byte-level BPE text");
            bytes[id] = raw;
        }
        foreach (var (token, id) in spec.SpecialTokens)
        {
            if (id < 0 || bytes[id] is not null)
                throw new InferenceException($"special token {token} has id {id}, which is negative or taken by vocab.json");
            bytes[id] = Encoding.UTF8.GetBytes(token);
        }
        for (int i = 0; i < count; i++)
            bytes[i] ??= [];
        return new TextTokenizer(bpe, bytes, spec.SpecialTokens);
    }

    /// <summary>Ids of plain text (no special tokens are recognised in it).</summary>
    public IReadOnlyList<int> Encode(string text) => _bpe.EncodeToIds(text);

    /// <summary>
    /// Ids of a set's own template text (a chat template's pieces): its special tokens are recognised, longest
    /// first, and the text between them is plain BPE. Never for user text, which <see cref="Encode"/> takes.
    /// </summary>
    public int[] EncodeTemplate(string text)
    {
        var ids = new List<int>();
        var specials = Special.Keys.OrderByDescending(k => k.Length).ToArray();
        int start = 0, i = 0;
        while (i < text.Length)
        {
            var hit = specials.FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (hit is null) { i++; continue; }
            if (i > start) ids.AddRange(Encode(text[start..i]));
            ids.Add(Special[hit]);
            i += hit.Length;
            start = i;
        }
        if (start < text.Length) ids.AddRange(Encode(text[start..]));
        return [.. ids];
    }

    /// <summary>The id of a special token named in the manifest.</summary>
    public int SpecialId(string token) =>
        Special.TryGetValue(token, out var id) ? id : throw new InferenceException($"tokenizer has no special token {token}");

    /// <summary>Whether <paramref name="id"/> is a special token.</summary>
    public bool IsSpecial(int id) => Special.Values.Contains(id);

    /// <summary>The raw bytes of one token. Valid as long as this tokenizer lives.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) =>
        (uint)id < (uint)_tokenBytes.Length ? _tokenBytes[id] : throw new ArgumentOutOfRangeException(nameof(id), id, "token id outside the vocabulary");

    /// <summary>Whole-text decode (special tokens, and ids past the tokenizer's, skipped).</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var buffer = new List<byte>();
        foreach (var id in ids)
            if ((uint)id < (uint)_tokenBytes.Length && !IsSpecial(id)) buffer.AddRange(_tokenBytes[id]);
        return Encoding.UTF8.GetString(buffer.ToArray());
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

    /// <summary>The text that token <paramref name="id"/> completes (possibly empty). Special tokens give no text.</summary>
    public string Push(int id)
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
