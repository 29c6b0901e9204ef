using System.Runtime.InteropServices;

namespace Bough.Cli;

/// <summary>The daemon's file creation mask.</summary>
internal static partial class ProcessUmask
{
    /// <summary>077: files and directories the process (and the tools it starts) creates are the owner's alone.</summary>
    private const uint OwnerOnly = 0x3F;

    /// <summary>
    /// Makes everything the daemon writes from now on unreadable by other users (catalog,
    /// console logs, memory images, sockets), whatever the mode a library asks for. Process-wide
    /// and inherited by child processes (qemu-img, QEMU).
    /// </summary>
    public static void RestrictToOwner()
    {
        if (!OperatingSystem.IsWindows())
            _ = Umask(OwnerOnly);
    }

    [DllImport("libc", EntryPoint = "umask")]
    private static extern uint Umask(uint mask);
}
