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

    private const string ReadWritePrefix = "rw:";
    private const string ReadOnlyPrefix = "ro:";

    /// <summary>The opaque of a read-write descriptor of <paramref name="path"/> (how it is found again to be taken away).</summary>
    public static string ReadWriteOpaque(string path) => ReadWritePrefix + path;

    /// <summary>The opaque of a read-only descriptor of <paramref name="path"/>.</summary>
    public static string ReadOnlyOpaque(string path) => ReadOnlyPrefix + path;

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

    /// <summary>
    /// Passes an image QEMU will write to as a new fd set holding a read-write and a read-only descriptor: when the
    /// image is later frozen under a new overlay QEMU reopens it read-only, and a jailed QEMU can only reopen from
    /// its fd set. Returns the set's id.
    /// </summary>
    public static async Task<int> AddImageAsync(QmpClient qmp, string path, CancellationToken ct)
    {
        string full = Path.GetFullPath(path);
        int set;
        using (var rw = File.OpenHandle(full, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
            set = await AddAsync(qmp, rw, ReadWriteOpaque(full), ct).ConfigureAwait(false);
        try
        {
            using var ro = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            await qmp.ExecuteWithFdAsync("add-fd", new Dictionary<string, object> { ["fdset-id"] = set, ["opaque"] = ReadOnlyOpaque(full) },
                ro, ct).ConfigureAwait(false);
            return set;
        }
        catch
        {
            await RemoveQuietlyAsync(qmp, set).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Removes every descriptor but the read-only ones of images and the read-write one of <paramref name="activeImage"/>
    /// (see <see cref="QmpCommands.CloseSpentDescriptorsAsync"/>).
    /// </summary>
    public static async Task RemoveSpentAsync(QmpClient qmp, string activeImage, CancellationToken ct)
    {
        JsonElement sets = await qmp.ExecuteAsync("query-fdsets", null, ct).ConfigureAwait(false);
        if (sets.ValueKind != JsonValueKind.Array) return;
        foreach (JsonElement set in sets.EnumerateArray())
        {
            if (!set.TryGetProperty("fdset-id", out var id) || !id.TryGetInt32(out int n) ||
                !set.TryGetProperty("fds", out var fds) || fds.ValueKind != JsonValueKind.Array) continue;
            foreach (JsonElement fd in fds.EnumerateArray())
            {
                string opaque = fd.TryGetProperty("opaque", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString() ?? "" : "";
                if (opaque.StartsWith(ReadOnlyPrefix, StringComparison.Ordinal) || opaque == ReadWriteOpaque(activeImage)) continue;
                if (fd.TryGetProperty("fd", out var num) && num.TryGetInt32(out int f))
                    await qmp.ExecuteAsync("remove-fd", new Dictionary<string, object> { ["fdset-id"] = n, ["fd"] = f }, ct).ConfigureAwait(false);
            }
        }
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
                    o.GetString() is { } opaque && StripMode(opaque) is var path && Path.IsPathFullyQualified(path))
                    map[n] = path;
            }
        }
        return map;
    }

    private static string StripMode(string opaque) =>
        opaque.StartsWith(ReadWritePrefix, StringComparison.Ordinal) || opaque.StartsWith(ReadOnlyPrefix, StringComparison.Ordinal)
            ? opaque[3..]
            : opaque;

    /// <summary><paramref name="filename"/>, or the path behind it when it is a known fd set.</summary>
    public static string? Resolve(string? filename, IReadOnlyDictionary<int, string> paths) =>
        IsFdSetPath(filename) &&
        int.TryParse(filename.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int set) &&
        paths.TryGetValue(set, out string? path)
            ? path
            : filename;
}
