using System.ComponentModel;
using System.Diagnostics;

namespace Bough.HostSetup;

/// <summary>
/// Starts a program under a umask of its own instead of this process's (the daemon's is 077, see
/// <see cref="ProcessUmask"/>): <c>/bin/sh -c 'umask 0022 &amp;&amp; exec "$0" "$@"' program args…</c>. Tools that lay out
/// files for other users (debootstrap and the dpkg maintainer scripts it runs in a guest tree, apt on the host)
/// create them with whatever umask they inherit, so they get the conventional one. The shell replaces itself with
/// the program (same pid: killing, waiting and the exit code are the program's) and passes the arguments on as
/// words, never parsing them.
/// </summary>
public static class ChildUmask
{
    /// <summary>The POSIX shell that sets the mask (its <c>umask</c> builtin) and then execs the program.</summary>
    public const string Shell = "/bin/sh";

    /// <summary>
    /// Rewrites <paramref name="psi"/> to run its <see cref="ProcessStartInfo.FileName"/> with its
    /// <see cref="ProcessStartInfo.ArgumentList"/> under <paramref name="mask"/>.
    /// </summary>
    /// <exception cref="Win32Exception">The program does not exist or is not executable (as <see cref="Process.Start()"/> would
    /// throw), resolved here so that a missing tool is not reported as the shell's exit code 127.</exception>
    /// <exception cref="ArgumentException">The arguments are given as one string (<see cref="ProcessStartInfo.Arguments"/>), which cannot be passed on as words.</exception>
    public static void Apply(ProcessStartInfo psi, UnixFileMode mask)
    {
        ArgumentNullException.ThrowIfNull(psi);
        if (!string.IsNullOrEmpty(psi.Arguments))
            throw new ArgumentException("set the arguments with ArgumentList, not Arguments, to run a program under a umask", nameof(psi));
        var program = CommandLocator.Find(psi.FileName)
            ?? throw new Win32Exception(2, $"'{psi.FileName}' was not found or is not executable");
        var args = psi.ArgumentList.ToList();
        psi.FileName = Shell;
        psi.ArgumentList.Clear();
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"umask {ProcessUmask.ToOctal(mask)} && exec \"$0\" \"$@\"");
        psi.ArgumentList.Add(program);
        foreach (var a in args) psi.ArgumentList.Add(a);
    }
}
