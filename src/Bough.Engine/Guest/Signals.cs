using System.Globalization;

namespace Bough.Engine;

/// <summary>
/// Linux signal numbers by name, so API callers may say <c>"SIGTERM"</c> or <c>"TERM"</c>. The
/// guest is always x86-64 Linux, so the numbers are fixed whatever the host is.
/// </summary>
public static class Signals
{
    public const int Min = 1, Max = 64;
    public const int Kill = 9;

    private static readonly Dictionary<string, int> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["TRAP"] = 5, ["ABRT"] = 6, ["BUS"] = 7, ["FPE"] = 8,
        ["KILL"] = 9, ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14, ["TERM"] = 15,
        ["STKFLT"] = 16, ["CHLD"] = 17, ["CONT"] = 18, ["STOP"] = 19, ["TSTP"] = 20, ["TTIN"] = 21, ["TTOU"] = 22,
        ["URG"] = 23, ["XCPU"] = 24, ["XFSZ"] = 25, ["VTALRM"] = 26, ["PROF"] = 27, ["WINCH"] = 28, ["IO"] = 29,
        ["PWR"] = 30, ["SYS"] = 31,
    };

    /// <summary>A number (1..64) or a name with or without <c>SIG</c>; anything else is 400 <c>invalid_request</c>.</summary>
    public static int Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            return Validate(n);
        var name = t.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? t[3..] : t;
        return ByName.TryGetValue(name, out var s)
            ? s
            : throw BoughException.Invalid($"signal '{text}' is not a signal number (1..64) or name such as SIGTERM, TERM, KILL, INT, HUP");
    }

    public static int Validate(int signal) =>
        signal is >= Min and <= Max ? signal : throw BoughException.Invalid($"signal must be between {Min} and {Max} (got {signal})");
}
