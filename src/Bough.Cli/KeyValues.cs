namespace Bough.Cli;

/// <summary>Parses repeated <c>KEY=VALUE</c> options (--env, --meta).</summary>
internal static class KeyValues
{
    /// <summary>Null when none were given, so the request leaves the field out entirely.</summary>
    public static Dictionary<string, string>? Parse(string optionName, IReadOnlyList<string>? items)
    {
        if (items is null || items.Count == 0)
            return null;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var eq = item.IndexOf('=');
            if (eq <= 0)
                throw new UsageException($"{optionName} expects KEY=VALUE, got '{item}'");
            result[item[..eq]] = item[(eq + 1)..];
        }
        return result;
    }
}
