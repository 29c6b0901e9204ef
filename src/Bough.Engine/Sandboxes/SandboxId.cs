using System.Security.Cryptography;

namespace Bough.Engine.Sandboxes;

/// <summary>Sandbox ids: "sb-" plus 12 base32 characters (60 random bits), safe in paths and hostnames.</summary>
public static class SandboxId
{
    /// <summary>Lower-case base32 without look-alikes (no l, o, 0, 1).</summary>
    internal const string Alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
    private static readonly System.Buffers.SearchValues<char> AlphabetValues = System.Buffers.SearchValues.Create(Alphabet);

    public static string New() => NewWithPrefix("sb-");

    /// <summary>A prefix plus 12 random characters of <see cref="Alphabet"/>; shared by all engine ids.</summary>
    internal static string NewWithPrefix(string prefix)
    {
        Span<char> chars = stackalloc char[12];
        for (var i = 0; i < chars.Length; i++)
            chars[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        return prefix + new string(chars);
    }

    /// <summary>True when the string could be an id; lets lookups reject junk without touching disk.</summary>
    public static bool IsWellFormed(string? id) =>
        id is { Length: > 3 and <= 64 } && id.StartsWith("sb-", StringComparison.Ordinal)
        && id.AsSpan(3).IndexOfAnyExcept(AlphabetValues) < 0;
}
