using System.Text;

namespace Bough.Engine.Guest;

/// <summary>
/// One stream (stdout or stderr) of a buffered exec, decoded as it arrives, with what it will
/// cost: its raw bytes, and the characters it becomes in the JSON answer. The second matters
/// because JSON escapes control characters, non-ASCII and invalid UTF-8 as <c>\uXXXX</c>: a few
/// MiB of binary output would otherwise become several times that in memory and on the wire.
/// </summary>
internal sealed class BufferedOutput
{
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder _text = new();
    private char[] _chars = [];

    public long Bytes { get; private set; }

    /// <summary>Characters of the JSON string this output becomes (an upper bound: short escapes are counted as six).</summary>
    public long JsonChars { get; private set; }

    public void Append(ReadOnlySpan<byte> data) => Decode(data, flush: false);

    /// <summary>The text, with an incomplete UTF-8 sequence at the end replaced (as a whole decode would).</summary>
    public string Finish()
    {
        Decode([], flush: true);
        return _text.ToString();
    }

    private void Decode(ReadOnlySpan<byte> data, bool flush)
    {
        Bytes += data.Length;
        var need = _decoder.GetCharCount(data, flush);
        if (_chars.Length < need) _chars = new char[Math.Max(need, 4096)];
        var n = _decoder.GetChars(data, _chars, flush);
        var chars = _chars.AsSpan(0, n);
        foreach (var c in chars) JsonChars += IsPlain(c) ? 1 : 6;
        _text.Append(chars);
    }

    /// <summary>What System.Text.Json's default encoder writes as itself; everything else becomes an escape.</summary>
    private static bool IsPlain(char c) => c is >= ' ' and < '\x7f' and not ('"' or '\\' or '<' or '>' or '&' or '\'' or '+' or '`');
}
