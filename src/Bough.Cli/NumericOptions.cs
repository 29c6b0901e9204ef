using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Bough.Cli;

/// <summary>
/// Numeric options whose parse errors speak the user's language ("a whole number") rather
/// than System.CommandLine's, which name the CLR type ("System.Int32").
/// </summary>
internal static class NumericOptions
{
    public static Option<int> Integer(string name, string description, string helpName, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = r => ParseInt(r, name),
        };

    /// <summary>A repeatable integer option (e.g. --port 80 --port 443).</summary>
    public static Option<int[]> Integers(string name, string description, string helpName, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = r => r.Tokens.Select(t => ParseInt(r, name, t.Value)).ToArray(),
        };

    public static Option<double> Number(string name, string description, string helpName, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
                    return value;
                r.AddError($"{name} expects a number, got '{text}'");
                return 0;
            },
        };

    private static int ParseInt(ArgumentResult r, string name) =>
        ParseInt(r, name, r.Tokens.Count > 0 ? r.Tokens[^1].Value : "");

    private static int ParseInt(ArgumentResult r, string name, string text)
    {
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            return value;
        r.AddError($"{name} expects a whole number, got '{text}'");
        return 0;
    }
}
