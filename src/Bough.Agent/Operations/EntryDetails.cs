using System.Text;
using Bough.Agent.Native;
using Bough.Agent.Users;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// Builds full entries (stat, list, move): the statx fields plus the owner and group names and a
/// symlink's target. One instance per operation, so /etc/passwd and /etc/group are read at most
/// once per listing however many entries it has.
/// </summary>
internal sealed class EntryDetails(UserResolver users)
{
    private const int MaxLinkTarget = ProtocolConstants.MaxPathLength;

    private Dictionary<uint, string>? _users;
    private Dictionary<uint, string>? _groups;

    public FileEntryDto Describe(string path, string name, in FileStat stat)
    {
        if (_users == null) (_users, _groups) = users.IdNames();
        var entry = stat.ToEntry(name);
        entry.Owner = _users.GetValueOrDefault(stat.Uid);
        entry.Group = _groups!.GetValueOrDefault(stat.Gid);
        if (stat.IsSymlink) entry.Target = ReadLink(path);
        return entry;
    }

    /// <summary>The target as stored; null if it vanished or is longer than PATH_MAX.</summary>
    private static unsafe string? ReadLink(string path)
    {
        byte* buffer = stackalloc byte[MaxLinkTarget];
        nint n = Libc.readlink(path, buffer, MaxLinkTarget);
        if (n <= 0 || n >= MaxLinkTarget) return null;
        return Encoding.UTF8.GetString(buffer, (int)n);
    }
}
