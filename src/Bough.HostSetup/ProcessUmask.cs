using System.Globalization;
using System.Runtime.InteropServices;

namespace Bough.HostSetup;

/// <summary>
/// This process's file-creation mask (umask(2)). The daemon runs with <see cref="Daemon"/> (077) so that every
/// file and directory it or its tools create without an explicit mode (the catalog, snapshot and sandbox files,
/// qemu-img overlays, sockets) is its owner's alone, even outside the 0700 data dir. Whatever ends up inside a
/// guest image is therefore given explicit modes, and external tools that lay out guest or host files for other
/// users run under <see cref="Shared"/> (<see cref="ChildUmask"/>).
/// </summary>
/// <remarks>
/// The mask is process-wide: set it once, at start-up, before any thread creates files. The value is
/// expressed as the permission bits it removes.
/// </remarks>
public static class ProcessUmask
{
    /// <summary>077: nothing the process creates is readable, writable or searchable by group or others.</summary>
    public const UnixFileMode Daemon = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                       UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>022: the conventional mask, for tools whose files other users (or a guest's users) must read.</summary>
    public const UnixFileMode Shared = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    // umask(2) cannot fail; mode_t is a 32-bit unsigned int on Linux.
    [DllImport("libc", EntryPoint = "umask")]
    private static extern uint UmaskNative(uint mask);

    /// <summary>Sets the mask and returns the previous one.</summary>
    public static UnixFileMode Set(UnixFileMode mask)
    {
        if (((uint)mask & ~0b111_111_111u) != 0)
            throw new ArgumentOutOfRangeException(nameof(mask), mask, "a umask holds only permission bits (0..0777)");
        return (UnixFileMode)UmaskNative((uint)mask);
    }

    /// <summary>
    /// The current mask, read from <c>/proc/self/status</c> (Linux 4.7+) rather than by setting and restoring it,
    /// which would let another thread create a file under the wrong mask in between.
    /// </summary>
    /// <exception cref="PlatformNotSupportedException">The kernel does not report the mask.</exception>
    public static UnixFileMode Current
    {
        get
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Umask:", StringComparison.Ordinal))
                    return Parse(line["Umask:".Length..].Trim());
            }
            throw new PlatformNotSupportedException("this kernel does not report the umask in /proc/self/status");
        }
    }

    /// <summary>The mask in the octal form <c>umask</c> prints and accepts (e.g. <c>0022</c>).</summary>
    public static string ToOctal(UnixFileMode mask) =>
        Convert.ToString((int)mask & 0b111_111_111, 8).PadLeft(4, '0');

    /// <summary>Parses an octal mask such as <c>0077</c> or <c>22</c>.</summary>
    /// <exception cref="FormatException">Not an octal number of at most three digits' worth of bits.</exception>
    public static UnixFileMode Parse(string octal)
    {
        ArgumentNullException.ThrowIfNull(octal);
        var value = 0;
        foreach (var c in octal.Trim())
        {
            if (c is < '0' or > '7') throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{octal}' is not an octal umask"));
            value = value * 8 + (c - '0');
            if (value > 0b111_111_111) throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{octal}' is not a umask (above 0777)"));
        }
        return (UnixFileMode)value;
    }
}
