using System.Globalization;
using Bough.Agent.Native;

namespace Bough.Agent.Users;

/// <summary>
/// Runs commands as another user. posix_spawn cannot change credentials and a managed runtime must
/// not fork, so the agent spawns a trampoline that drops to the user and execve's the command in
/// place (same pid, session, pipes and cwd):
/// <code>exec-as UID GID G1,G2,..|- EXE ARGV0 ARGV..</code>
/// The trampoline is Native/exec-as.c: a 1.6 KB freestanding static binary (no libc, so it runs in
/// any image), embedded here and loaded into a sealed memfd once per agent process, then spawned
/// as <c>/proc/self/fd/N</c>. A first version spawned the agent itself in a trampoline mode, which
/// cost a .NET runtime start per exec: ~40 ms natively but ~2.7 s under TCG.
/// The command's environment is passed as the trampoline's own (it uses none), so nothing of the
/// agent's environment (LD_LIBRARY_PATH of its private loader) can reach the command. The trampoline
/// resets all signal dispositions and the mask; failures print on stderr and exit 127/126 like a shell.
/// </summary>
internal sealed class ExecAs
{
    /// <summary>Built from Native/exec-as.c with the command in its header comment.</summary>
    private static readonly string Binary =
        "f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAsABAAAAAAABAAAAAAAAAANAEAAAAAAAAAAAAAEAAOAACAEAABgAFAAEAAAAHAAAAsAAAAAAAAACwAEAAAAAAALAA" +
        "QAAAAAAAywMAAAAAAADQAwQAAAAAACAAAAAAAAAAUeV0ZAYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAABIiedI" +
        "g+Tw6E0BAAD0SIHsqAAAADHSioLeA0AAhMB1CEhj0kgp1+shSIH6yAAAAHTviEQUqEj/wuvcgfrIAAAAdBGIRBSoSP/CigQXSGPKhMB157jVA0AAihCE0nQM" +
        "iFQMqEj/wEj/wevuSInwvwEAAABBuAoAAABI99hID0nwSInwMdJJ9/CDwjCIVDyTSInySInGSIn4SI1/AUiD+gl33onPSGPQSGPJRIpEFJNI/8pIjXQkqESI" +
        "RAyoSP/BhdJ1540UB0Ux0khj0sZEFKgKjVQHAbgBAAAAvwIAAABIY9IPBUiBxKgAAADDSYnx6Br///8x/0mD+f64PAAAAEAPlMcx0kUx0kiDx35IidYPBev+" +
        "MckxwEiLN4oWg+owgPoJdydIa8AKSA++0kj/xv/BSIk3SAHQg/kLddu+FgAAAL/1A0AA6KH///+FyXTtuv7///9IOcJy48NBVkFVQVRVU0iD7DBMiydJg/wF" +
        "fwy+FgAAAL8ABEAA6yhIi0cQSIn7SInnSIkEJOiF////icVIiwQkgDgAdA++FgAAAL8yBEAA6ET///9Ii0MYSInnSIkEJOhb////QYnFSIsEJIA4AHQMvhYA" +
        "AAC/OgRAAOvTSItDIEUx9oA4LUiJBCR1BoB4AQB0UEiJ50n/xugi////QokEtXwEQABIiwQkihCE0nQzSP/ASIkEJID6LHUYSYH+AAABAHXOvhYAAAC/QgRA" +
        "AOl8////vhYAAAC/UgRAAOlt////RTHSvoAEQAC4dAAAADHSTIn3DwW/XQRAAEiJxkiFwA+ISP///0SJ6kUx0rh3AAAASInXSInWDwW/ZwRAAEiJxkiFwA+I" +
        "JP///4nqRTHSuHUAAABIiddIidYPBb9xBEAASInGSIXAD4gB////SI18JBC5CAAAADHAMdLzq0iNdCQQvwEAAABBuQ0AAABIg/8JTI1HAXQGSIP/E3UFTInH" +
        "6+tBuggAAABMicgPBUyJx0mD+EF11zHASI10JAi/AgAAAEiJRCQIuA4AAAAPBUUx0kiLeyhKjVTjEEiNczC4OwAAAA8FSIt7MEiJxul9/v//OiBlcnJubyAA" +
        "Ym91Z2gtYWdlbnQ6IGV4ZWMtYXM6IABiYWQgbnVtYmVyAHVzYWdlOiBleGVjLWFzIFVJRCBHSUQgR1JPVVBTIEVYRSBBUkdWMCBbQVJHVi4uLl0AYmFkIHVp" +
        "ZABiYWQgZ2lkAHRvbyBtYW55IGdyb3VwcwBiYWQgZ3JvdXBzAHNldGdyb3VwcwBzZXRyZXNnaWQAc2V0cmVzdWlkAEdDQzogKERlYmlhbiAxMi4yLjAtMTQr" +
        "ZGViMTJ1MSkgMTIuMi4wAAAuc2hzdHJ0YWIALnRleHQALnJvZGF0YQAuYnNzAC5jb21tZW50AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" +
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACwAAAAEAAAAHAAAAAAAAALAAQAAAAAAAsAAAAAAAAAAlAwAAAAAAAAAAAAAAAAAAAQAAAAAA" +
        "AAAAAAAAAAAAABEAAAABAAAAMgAAAAAAAADVA0AAAAAAANUDAAAAAAAApgAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAQAAAAAAAAAZAAAACAAAAAMAAAAAAAAA" +
        "gARAAAAAAAB7BAAAAAAAAAAABAAAAAAAAAAAAAAAAAAgAAAAAAAAAAAAAAAAAAAAHgAAAAEAAAAwAAAAAAAAAAAAAAAAAAAAewQAAAAAAAAnAAAAAAAAAAAA" +
        "AAAAAAAAAQAAAAAAAAABAAAAAAAAAAEAAAADAAAAAAAAAAAAAAAAAAAAAAAAAKIEAAAAAAAAJwAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAA=";

    private readonly Lock _lock = new();
    private string? _path;

    /// <summary>The trampoline's argv for a command.</summary>
    public static List<string> BuildArgv(string trampoline, ResolvedUser user, string executable, IReadOnlyList<string> argv)
    {
        var list = new List<string>(argv.Count + 5)
        {
            trampoline,
            user.Uid.ToString(CultureInfo.InvariantCulture),
            user.Gid.ToString(CultureInfo.InvariantCulture),
            user.Groups.Count == 0 ? "-" : string.Join(',', user.Groups.Select(g => g.ToString(CultureInfo.InvariantCulture))),
            executable,
        };
        list.AddRange(argv);
        return list;
    }

    /// <summary>
    /// <c>/proc/self/fd/N</c> of a memfd holding the trampoline (close-on-exec, so commands never
    /// inherit it; execve opens the path before closing it). Sealed against writes.
    /// </summary>
    public unsafe string Path()
    {
        lock (_lock)
        {
            if (_path != null) return _path;
            var bytes = Convert.FromBase64String(Binary);
            int fd = Libc.memfd_create("bough-exec-as", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
            if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "memfd_create", "bough-exec-as");
            fixed (byte* p = bytes)
            {
                if (Libc.write(fd, p, bytes.Length) != bytes.Length)
                {
                    int err = Libc.Errno;
                    Libc.close(fd);
                    throw AgentError.FromErrno(err, "write", "bough-exec-as memfd");
                }
            }
            Libc.fchmod(fd, 0x1ed); // 0755
            Libc.fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SEAL | Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_WRITE);
            return _path = $"/proc/self/fd/{fd}";
        }
    }
}
