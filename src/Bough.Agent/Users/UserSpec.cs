using System.Globalization;
using Bough.Protocol;

namespace Bough.Agent.Users;

/// <summary>
/// The credentials a command runs with. <see cref="Home"/> is the passwd home (null when the user
/// has no passwd entry); <see cref="Groups"/> are the supplementary groups passed to setgroups.
/// </summary>
internal sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> Groups, string? Name, string? Home)
{
    /// <summary>What the agent itself runs as: commands for this user need no credential change.</summary>
    public bool IsRoot => Uid == 0 && Gid == 0;
}

/// <summary>
/// Resolves a Docker-style user spec (<c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c>, also
/// <c>name:gid</c> and <c>uid:group</c>) against the guest's own /etc/passwd and /etc/group, the way
/// runc does for <c>docker run --user</c>:
/// <list type="bullet">
/// <item>a numeric uid needs no passwd entry; without one the primary gid is 0 and HOME is "/" (Docker's rules);</item>
/// <item>an explicit group replaces the primary gid and the supplementary groups are just that gid;</item>
/// <item>otherwise the supplementary groups are the primary gid plus every /etc/group entry listing the user's name.</item>
/// </list>
/// Files are read on every call (no cache) so users added by earlier commands are seen at once.
/// Names that match no entry are a <c>bad_request</c> naming the file, never a crash.
/// </summary>
internal sealed class UserResolver(string etcDir)
{
    private const int MaxSpecLength = 256;
    private const long MaxFileBytes = 16 << 20;

    public ResolvedUser Resolve(string spec)
    {
        if (string.IsNullOrEmpty(spec) || spec.Length > MaxSpecLength || spec.Any(c => char.IsControl(c) || c is ' ')
            || spec.Count(c => c == ':') > 1 || spec.StartsWith(':') || spec.EndsWith(':'))
            throw Bad($"invalid user '{Trim(spec)}': use name, uid, name:group or uid:gid");
        int colon = spec.IndexOf(':');
        string userPart = colon < 0 ? spec : spec[..colon];
        string? groupPart = colon < 0 ? null : spec[(colon + 1)..];

        var passwd = ReadEntries("passwd");
        string[]? pw;
        uint uid;
        if (TryParseId(userPart, out uid))
            pw = passwd.FirstOrDefault(e => e.Length >= 7 && TryParseId(e[2], out var u) && u == uid);
        else
        {
            pw = passwd.FirstOrDefault(e => e.Length >= 7 && e[0] == userPart)
                ?? throw Bad($"unknown user '{Trim(userPart)}': no such entry in {Path.Combine(etcDir, "passwd")}");
            if (!TryParseId(pw[2], out uid)) throw Bad($"user '{Trim(userPart)}' has an invalid uid in {Path.Combine(etcDir, "passwd")}");
        }
        string? name = pw?[0];
        string? home = pw is { } p && p[5].StartsWith('/') ? p[5] : null;

        if (groupPart != null)
        {
            uint gid = ResolveGroup(groupPart);
            return new ResolvedUser(uid, gid, [gid], name, home);
        }

        uint primary = pw != null && TryParseId(pw[3], out var g) ? g : 0;
        var groups = new SortedSet<uint> { primary };
        if (name != null)
        {
            foreach (var e in ReadEntries("group"))
                if (e.Length >= 4 && TryParseId(e[2], out var gid) && e[3].Split(',').Contains(name, StringComparer.Ordinal))
                    groups.Add(gid);
        }
        return new ResolvedUser(uid, primary, [.. groups], name, home);
    }

    /// <summary>
    /// uid → user name and gid → group name from the guest's files, for file listings. The first
    /// entry of an id wins (as getpwuid). Unreadable or oversized files give no names, never an error:
    /// a stat must not fail because /etc/passwd is odd.
    /// </summary>
    public (Dictionary<uint, string> Users, Dictionary<uint, string> Groups) IdNames()
    {
        var users = new Dictionary<uint, string>();
        var groups = new Dictionary<uint, string>();
        try
        {
            foreach (var e in ReadEntries("passwd"))
                if (e.Length >= 3 && TryParseId(e[2], out var uid)) users.TryAdd(uid, e[0]);
            foreach (var e in ReadEntries("group"))
                if (e.Length >= 3 && TryParseId(e[2], out var gid)) groups.TryAdd(gid, e[0]);
        }
        catch (AgentError) { }
        return (users, groups);
    }

    private uint ResolveGroup(string group)
    {
        if (TryParseId(group, out var gid)) return gid;
        var entry = ReadEntries("group").FirstOrDefault(e => e.Length >= 3 && e[0] == group)
            ?? throw Bad($"unknown group '{Trim(group)}': no such entry in {Path.Combine(etcDir, "group")}");
        return TryParseId(entry[2], out gid) ? gid : throw Bad($"group '{Trim(group)}' has an invalid gid in {Path.Combine(etcDir, "group")}");
    }

    /// <summary>Colon-separated entries; a missing file has none (distroless images often lack /etc/group).</summary>
    private List<string[]> ReadEntries(string file)
    {
        string path = Path.Combine(etcDir, file);
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) return [];
            if (info.Length > MaxFileBytes) throw Bad($"{path} is larger than {MaxFileBytes >> 20} MiB");
            return File.ReadLines(path)
                .Where(l => l.Length > 0 && l[0] != '#')
                .Select(l => l.Split(':'))
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentError(ErrorCodes.IoError, $"cannot read {path}: {e.Message}");
        }
    }

    /// <summary>Decimal 0..2^32-2 (uint.MaxValue is (uid_t)-1, which set*id calls read as "unchanged").</summary>
    private static bool TryParseId(string s, out uint id) =>
        uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id != uint.MaxValue && s.Length <= 10;

    private static string Trim(string s) => s.Length > 64 ? s[..64] + "…" : s;

    private static AgentError Bad(string message) => new(ErrorCodes.BadRequest, message);
}
