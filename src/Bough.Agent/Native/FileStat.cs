using Bough.Protocol;

namespace Bough.Agent.Native;

/// <summary>What the agent needs from statx; statx has one layout on every architecture, unlike struct stat.</summary>
internal readonly record struct FileStat(uint Mode, long Size, long MtimeMs, uint Uid, uint Gid)
{
    public const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000;

    public bool IsDirectory => (Mode & S_IFMT) == S_IFDIR;
    public bool IsRegular => (Mode & S_IFMT) == S_IFREG;
    public bool IsSymlink => (Mode & S_IFMT) == S_IFLNK;
    public int Permissions => (int)(Mode & 0xFFF);

    public string TypeName => (Mode & S_IFMT) switch
    {
        S_IFREG => "file",
        S_IFDIR => "dir",
        S_IFLNK => "symlink",
        _ => "other",
    };

    /// <summary>statx the path; <paramref name="followLinks"/> false reports a symlink itself. Returns errno (0 = ok).</summary>
    public static unsafe int TryGet(string path, bool followLinks, out FileStat stat)
    {
        byte* buf = stackalloc byte[256];
        int rc = Libc.statx(Libc.AT_FDCWD, path, followLinks ? 0 : Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, buf);
        if (rc != 0)
        {
            stat = default;
            return Libc.Errno;
        }
        uint uid = *(uint*)(buf + 20);
        uint gid = *(uint*)(buf + 24);
        uint mode = *(ushort*)(buf + 28);
        long size = (long)*(ulong*)(buf + 40);
        long mtimeSec = *(long*)(buf + 112);
        uint mtimeNsec = *(uint*)(buf + 120);
        stat = new FileStat(mode, size, mtimeSec * 1000 + mtimeNsec / 1_000_000, uid, gid);
        return 0;
    }

    /// <summary>The basic entry (what v1 hosts read); <see cref="Operations.EntryDetails"/> adds owner names and link targets.</summary>
    public FileEntryDto ToEntry(string name) => new()
    {
        Name = name, Type = TypeName, Size = Size, Mode = Permissions, MtimeMs = MtimeMs, Uid = Uid, Gid = Gid,
    };
}
