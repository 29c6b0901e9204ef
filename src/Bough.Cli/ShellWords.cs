using System.Text;

namespace Bough.Cli;

/// <summary>
/// Splits one option value into argv the way a POSIX shell splits words, and back. Used for
/// argv-valued options (<c>template create --start "busybox httpd -f -p 8080"</c>), where one
/// quoted string reads better than a repeated option per word.
/// </summary>
/// <remarks>
/// Only word splitting and quoting: no variables, globbing, pipes or redirections. A command that
/// needs those is written as <c>sh -c '...'</c>, which this splits into exactly three words.
/// </remarks>
internal static class ShellWords
{
    /// <summary>
    /// Whitespace separates words; '…' quotes literally; "…" quotes with \" \\ \$ \` escapes;
    /// a backslash outside quotes escapes the next character. An unterminated quote is a usage error.
    /// </summary>
    public static List<string> Split(string optionName, string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case ' ' or '\t' or '\n' or '\r':
                    if (inWord)
                        words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                    break;
                case '\'':
                    inWord = true;
                    var close = text.IndexOf('\'', i + 1);
                    if (close < 0)
                        throw Unterminated(optionName, text, '\'');
                    word.Append(text, i + 1, close - i - 1);
                    i = close;
                    break;
                case '"':
                    inWord = true;
                    i = ReadDoubleQuoted(optionName, text, i + 1, word);
                    break;
                case '\\':
                    inWord = true;
                    if (i + 1 < text.Length)
                        word.Append(text[++i]);
                    else
                        word.Append(c);
                    break;
                default:
                    inWord = true;
                    word.Append(c);
                    break;
            }
        }
        if (inWord)
            words.Add(word.ToString());
        return words;
    }

    /// <summary>Reads up to the closing '"' (whose index it returns), applying the escapes a shell applies there.</summary>
    private static int ReadDoubleQuoted(string optionName, string text, int start, StringBuilder word)
    {
        for (var i = start; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '"')
                return i;
            if (c == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$' or '`')
                c = text[++i];
            word.Append(c);
        }
        throw Unterminated(optionName, text, '"');
    }

    /// <summary>The argv as one line a shell (and <see cref="Split"/>) reads back as the same words.</summary>
    public static string Join(IEnumerable<string> argv) => string.Join(' ', argv.Select(Quote));

    private static string Quote(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%^".Contains(c)))
            return word;
        return "'" + word.Replace("'", "'\\''") + "'";
    }

    private static UsageException Unterminated(string optionName, string text, char quote) =>
        new($"{optionName}: unterminated {quote} quote in '{text}'");
}
