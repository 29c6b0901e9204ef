using System.CommandLine;

namespace Bough.Cli;

internal static class ParseResultExtensions
{
    /// <summary>
    /// The option's value, or null when it was not given. Used instead of <c>Option&lt;int?&gt;</c>,
    /// whose parse errors name the CLR type ("System.Nullable`1[System.Int32]").
    /// </summary>
    public static T? GetOptional<T>(this ParseResult parse, Option<T> option) where T : struct =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option) : null;
}
