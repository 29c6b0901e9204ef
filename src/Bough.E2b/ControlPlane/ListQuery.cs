using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace Bough.E2b.ControlPlane;

/// <summary>
/// The query of E2B's list calls: filters and paging. <c>nextToken</c> is an opaque offset into
/// the list ordered by start time, then id (stable while sandboxes come and go at the end).
/// </summary>
internal sealed record ListQuery(IReadOnlyDictionary<string, string> Metadata, IReadOnlySet<string>? States, int Limit, int Offset)
{
    public const int MaxLimit = 1000;
    public const int DefaultLimit = 100;

    public static ListQuery Parse(IQueryCollection query) => new(
        ParseMetadata(query["metadata"]),
        query["state"].Count == 0 ? null
            : query["state"].SelectMany(s => (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .ToHashSet(StringComparer.Ordinal),
        ParseLimit(query["limit"]),
        ParseToken(query["nextToken"]));

    /// <summary>
    /// The SDK encodes the metadata filter three times: <c>encodeURIComponent</c> of each key and value,
    /// a URLSearchParams string, and the query encoding of that whole string. The query is already
    /// decoded once here; parse the form, then undo the per-key encoding.
    /// </summary>
    internal static Dictionary<string, string> ParseMetadata(string? value)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(value))
            return result;
        foreach (var (k, v) in QueryHelpers.ParseQuery("?" + value))
            result[Uri.UnescapeDataString(k)] = Uri.UnescapeDataString(v.ToString());
        return result;
    }

    private static int ParseLimit(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return DefaultLimit;
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxLimit
            ? n : throw E2bException.Invalid($"limit must be an integer from 1 to {MaxLimit}");
    }

    private static int ParseToken(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return 0;
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n : throw E2bException.Invalid("nextToken is not one this server issued");
    }

    /// <summary>One page of <paramref name="items"/>; sets <c>X-Next-Token</c> when more follow.</summary>
    public IReadOnlyList<T> Page<T>(IReadOnlyList<T> items, HttpResponse response)
    {
        var page = items.Skip(Offset).Take(Limit).ToList();
        if (Offset + page.Count < items.Count)
            response.Headers["X-Next-Token"] = (Offset + page.Count).ToString(CultureInfo.InvariantCulture);
        return page;
    }
}
