namespace Bough.HostSetup;

/// <summary>
/// The few facts about the host that setup decisions depend on, as replaceable functions, so tests
/// can exercise the non-root or missing-package paths without really being non-root.
/// </summary>
public sealed record HostSystem
{
    /// <summary>The real host.</summary>
    public static HostSystem Current { get; } = new();

    public Func<bool> IsRoot { get; init; } = HostIdentity.IsRoot;
    public Func<string, string?> FindCommand { get; init; } = CommandLocator.Find;
    public Func<string, bool> FileExists { get; init; } = File.Exists;
    public Func<string, bool> IsStaticElf { get; init; } = Elf.IsStatic;
}

/// <summary>Finds executables the way a root shell would, so a non-root PATH without sbin still finds mkfs.ext4.</summary>
public static class CommandLocator
{
    private static readonly string[] ExtraDirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>Absolute path of an executable named <paramref name="name"/>, or null.</summary>
    public static string? Find(string name)
    {
        if (name.Contains('/'))
            return IsExecutable(name) ? name : null;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(ExtraDirs))
        {
            var candidate = Path.Combine(dir, name);
            if (IsExecutable(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Like <see cref="Find"/> but throws a message that points at <c>bough doctor</c>.</summary>
    public static string Require(string name, string package) =>
        Find(name) ?? throw new SetupException(
            $"'{name}' was not found; it comes from the Debian package '{package}'. " +
            $"Install it with: sudo apt-get install -y --no-install-recommends {package}");

    private static bool IsExecutable(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || OperatingSystem.IsWindows()) return info.Exists;
            return (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}

/// <summary>Minimal ELF inspection.</summary>
public static class Elf
{
    /// <summary>
    /// True for a 64-bit ELF without a PT_INTERP program header, i.e. one that needs no dynamic
    /// loader. The guest initramfs has no libc, so busybox there must be static; Debian's dynamic
    /// <c>busybox</c> package installs the same path, which is why the file alone proves nothing.
    /// </summary>
    public static bool IsStatic(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> hdr = stackalloc byte[64];
            if (f.Read(hdr) < 64 || hdr[0] != 0x7f || hdr[1] != (byte)'E' || hdr[2] != (byte)'L' || hdr[3] != (byte)'F' || hdr[4] != 2)
                return false;
            long phoff = BitConverter.ToInt64(hdr[32..40]);
            int phentsize = BitConverter.ToUInt16(hdr[54..56]);
            int phnum = BitConverter.ToUInt16(hdr[56..58]);
            var ph = new byte[phentsize];
            for (var i = 0; i < phnum; i++)
            {
                f.Position = phoff + (long)i * phentsize;
                if (f.Read(ph) < 4) return false;
                if (BitConverter.ToUInt32(ph, 0) == 3 /* PT_INTERP */) return false;
            }
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
