using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Bough.Vmm;

/// <summary>
/// QEMU fd sets (<c>add-fd</c>, <c>/dev/fdset/N</c>): how a jailed QEMU, which cannot open paths in the data
/// directory, is given files after start-up. QEMU hands an fd set's descriptor to whatever opens
/// <c>/dev/fdset/N</c> with the same access mode.
/// </summary>
internal static class FdSets
{
    private const string Prefix = "/dev/fdset/";

    /// <summary>The filename under which QEMU opens fd set <paramref name="set"/>.</summary>
    public static string PathOf(int set) => Prefix + set.ToString(CultureInfo.InvariantCulture);

    public static bool IsFdSetPath(string? filename) => filename?.StartsWith(Prefix, StringComparison.Ordinal) == true;

    /// <summary>Passes <paramref name="file"/> to QEMU in a new fd set whose opaque is <paramref name="path"/>; returns its id.</summary>
    public static async Task<int> AddAsync(QmpClient qmp, SafeHandle file, string path, CancellationToken ct)
    {
        JsonElement r = await qmp.ExecuteWithFdAsync("add-fd", new Dictionary<string, object> { ["opaque"] = path }, file, ct)
            .ConfigureAwait(false);
        return r.ValueKind == JsonValueKind.Object && r.TryGetProperty("fdset-id", out var id) && id.TryGetInt32(out int set)
            ? set
            : throw new InvalidDataException($"add-fd returned no fdset-id: {r.GetRawText()}");
    }

    /// <summary><c>remove-fd</c>; QEMU closes the descriptor once nothing it opened from the set uses it. Best effort.</summary>
    public static async Task RemoveQuietlyAsync(QmpClient qmp, int set)
    {
        try
        {
            await qmp.ExecuteAsync("remove-fd", new Dictionary<string, object> { ["fdset-id"] = set }, CancellationToken.None)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is QmpException or QmpDisconnectedException or ObjectDisposedException) { }
    }

    /// <summary>fd set id → the absolute path its opaque names, from the <c>return</c> of <c>query-fdsets</c>.</summary>
    public static IReadOnlyDictionary<int, string> ParseOpaques(JsonElement queryFdsets)
    {
        var map = new Dictionary<int, string>();
        if (queryFdsets.ValueKind != JsonValueKind.Array) return map;
        foreach (JsonElement set in queryFdsets.EnumerateArray())
        {
            if (!set.TryGetProperty("fdset-id", out var id) || !id.TryGetInt32(out int n) ||
                !set.TryGetProperty("fds", out var fds) || fds.ValueKind != JsonValueKind.Array) continue;
            foreach (JsonElement fd in fds.EnumerateArray())
            {
                if (fd.TryGetProperty("opaque", out var o) && o.ValueKind == JsonValueKind.String &&
                    o.GetString() is { } path && Path.IsPathFullyQualified(path))
                    map[n] = path;
            }
        }
        return map;
    }

    /// <summary><paramref name="filename"/>, or the path behind it when it is a known fd set.</summary>
    public static string? Resolve(string? filename, IReadOnlyDictionary<int, string> paths) =>
        IsFdSetPath(filename) &&
        int.TryParse(filename.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int set) &&
        paths.TryGetValue(set, out string? path)
            ? path
            : filename;
}
