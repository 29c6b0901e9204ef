using System.Globalization;

namespace Bough.HostSetup;

/// <summary>
/// The system group (and matching nologin system user) every sandbox's QEMU runs in. Each VM has its own uid from a
/// reserved range; the group is shared, names those processes in <c>ps</c> and owns nothing else.
/// </summary>
public static class VmAccount
{
    public const string DefaultName = "bough-vm";

    /// <summary>The gid of group <paramref name="name"/> from <paramref name="groupFile"/>, or null when there is none.</summary>
    public static int? GroupId(string name = DefaultName, string groupFile = "/etc/group")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        try
        {
            foreach (string line in File.ReadLines(groupFile))
            {
                var f = line.Split(':');
                if (f.Length >= 3 && f[0] == name &&
                    int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out int gid))
                    return gid;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Whether user <paramref name="name"/> exists in <paramref name="passwdFile"/>.</summary>
    public static bool UserExists(string name = DefaultName, string passwdFile = "/etc/passwd")
    {
        try
        {
            return File.ReadLines(passwdFile).Any(l => l.StartsWith(name + ":", StringComparison.Ordinal));
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Creates the group and user when missing (root); otherwise throws a <see cref="SetupException"/> holding the
    /// commands to run, like the other setup steps.
    /// </summary>
    public static async Task EnsureAsync(IProgress<SetupProgress>? p, CancellationToken ct, string name = DefaultName,
        HostSystem? system = null)
    {
        var host = system ?? HostSystem.Current;
        bool group = GroupId(name) is not null, user = UserExists(name);
        if (group && user)
        {
            p?.Report(new SetupProgress("vm-account", $"group and user {name} exist"));
            return;
        }
        if (!host.IsRoot())
            throw new SetupException($"The system group and user '{name}' that sandboxes run as are missing (not running as root). Create them with:\n" +
                                     CreateCommands(name, sudo: true));
        if (!group)
        {
            p?.Report(new SetupProgress("vm-account", $"groupadd --system {name}"));
            await CommandRunner.RunCheckedAsync(CommandLocator.Require("groupadd", "passwd"), ["--system", name], HostFiles, ct)
                .ConfigureAwait(false);
        }
        if (!user)
        {
            p?.Report(new SetupProgress("vm-account", $"useradd --system {name}"));
            await CommandRunner.RunCheckedAsync(CommandLocator.Require("useradd", "passwd"), UserAddArgs(name), HostFiles, ct)
                .ConfigureAwait(false);
        }
    }

    /// <summary>/etc/passwd and /etc/group are read by every user: the tools that rewrite them do not inherit the daemon's 077.</summary>
    private static readonly CommandOptions HostFiles = new() { Umask = ProcessUmask.Shared };

    /// <summary>The exact shell commands that create the group and user.</summary>
    public static string CreateCommands(string name, bool sudo)
    {
        string prefix = sudo ? "sudo " : "";
        return $"  {prefix}groupadd --system {name}\n  {prefix}useradd {string.Join(' ', UserAddArgs(name))}";
    }

    private static string[] UserAddArgs(string name) =>
        ["--system", "--gid", name, "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name];
}
