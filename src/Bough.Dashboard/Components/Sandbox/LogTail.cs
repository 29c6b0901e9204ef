using System.Text;

namespace Bough.Dashboard.Components.SandboxView;

/// <summary>
/// The last <see cref="MaxLines"/> lines of a growing byte stream, decoded as UTF-8 across chunk boundaries (a
/// character split between two reads stays whole). Carriage returns are dropped: a serial console ends lines
/// with CRLF, and a lone CR would only confuse a &lt;pre&gt;.
/// </summary>
internal sealed class LogTail
{
    /// <summary>How many lines are kept.</summary>
    public const int MaxLines = 200;

    /// <summary>A line longer than this is cut (a console can print without ever ending a line).</summary>
    private const int MaxLineChars = 4096;

    private readonly Decoder _decoder = new UTF8Encoding(false, false).GetDecoder();
    private readonly LinkedList<string> _lines = new();
    private readonly StringBuilder _partial = new();
    private string? _text;

    /// <summary>The kept lines, the unfinished last one included.</summary>
    public string Text => _text ??= string.Join('\n', _lines) + (_lines.Count > 0 && _partial.Length > 0 ? "\n" : "") + _partial;

    /// <summary>Appends bytes as they came.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[_decoder.GetCharCount(bytes, flush: false)];
        _decoder.GetChars(bytes, chars, flush: false);
        foreach (var c in chars)
        {
            if (c == '\n' || _partial.Length >= MaxLineChars)
            {
                _lines.AddLast(_partial.ToString());
                _partial.Clear();
                if (_lines.Count > MaxLines)
                    _lines.RemoveFirst();
            }
            if (c is not '\n' and not '\r')
                _partial.Append(c);
        }
        _text = null;
    }
}
