using System.Text.RegularExpressions;

namespace Bough.Engine.Snapshots;

/// <summary>Snapshot ids and tags. Ids are random, so auto tags built from them never collide.</summary>
public static partial class SnapshotNames
{
    public static string NewId() => Sandboxes.SandboxId.NewWithPrefix("sn-");

    /// <summary>"&lt;sandbox id&gt;.&lt;random part of the snapshot id&gt;": readable, and unique because the id is.</summary>
    public static string AutoTag(string sandboxId, string snapshotId) => $"{sandboxId}.{snapshotId[3..]}";

    public static bool IsId(string s) => s.StartsWith("sn-", StringComparison.Ordinal) && s.Length == 15;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex TagPattern();

    public static void ValidateTag(string? tag)
    {
        if (tag is null) return;
        if (!TagPattern().IsMatch(tag))
            throw BoughException.Invalid("tag must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");
        if (IsId(tag))
            throw BoughException.Invalid("tag must not look like a snapshot id (sn-...)");
    }
}
