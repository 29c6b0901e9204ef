namespace Bough.HostSetup;

/// <summary>
/// The Debian packages Bough needs on the host and the commands or files that prove each one is
/// installed. Checking commands rather than asking dpkg keeps this right on hosts where a tool was
/// installed some other way.
/// </summary>
public sealed class HostRequirements(HostSystem? system = null)
{
    private readonly HostSystem _system = system ?? HostSystem.Current;

    public const string BusyboxPath = "/bin/busybox";

    /// <summary>Everything needed to build images and run guests.</summary>
    public static IReadOnlyList<HostPackage> All { get; } =
    [
        new("qemu-system-x86", ["qemu-system-x86_64"], "runs the guests (microvm machine)"),
        new("qemu-utils", ["qemu-img"], "creates qcow2 base images and per-sandbox overlays"),
        new("busybox-static", [BusyboxPath], "shell and tools of the guest initramfs and base image"),
        new("e2fsprogs", ["mkfs.ext4"], "builds the guest root filesystem without mounting it"),
        new("cpio", ["cpio"], "packs the guest initramfs"),
        new("nftables", ["nft"], "the host firewall that keeps each sandbox's network to what its policy allows"),
        new("libstdc++6", ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6"], "runtime library copied into the guest for the agent"),
    ];

    /// <summary>Packages whose proof is absent (or, for busybox, present but dynamically linked).</summary>
    public IReadOnlyList<HostPackage> Missing() => All.Where(p => !IsInstalled(p)).ToList();

    /// <summary>Whether every command or file of <paramref name="package"/> is there.</summary>
    public bool IsInstalled(HostPackage package) => package.Provides.All(item =>
        item.StartsWith('/')
            ? _system.FileExists(item) && (item != BusyboxPath || _system.IsStaticElf(item))
            : _system.FindCommand(item) is not null);

    /// <summary>
    /// Installs what is missing with apt-get when running as root; otherwise throws a
    /// <see cref="SetupException"/> whose message holds the exact commands to run, because a
    /// non-root process must not try (and fail) to escalate on its own.
    /// </summary>
    public async Task InstallMissingAsync(IProgress<SetupProgress>? p, CancellationToken ct)
    {
        var missing = Missing();
        if (missing.Count == 0)
        {
            p?.Report(new SetupProgress("packages", "all host packages are installed"));
            return;
        }
        var names = missing.Select(m => m.Name).ToList();
        var aptGet = _system.FindCommand("apt-get");
        if (!_system.IsRoot() || aptGet is null)
        {
            var why = aptGet is null ? "apt-get was not found (Bough supports Debian-based hosts)" : "not running as root";
            throw new SetupException(
                $"Missing host packages: {string.Join(", ", names)} ({why}). Install them with:\n" +
                InstallCommands(names, sudo: true));
        }

        var env = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
        // Package files and what maintainer scripts write are for every user of the host, not only the daemon's (077).
        var opts = new CommandOptions { Environment = env, Umask = ProcessUmask.Shared };
        if (!AptListsPresent())
        {
            p?.Report(new SetupProgress("packages", "apt-get update"));
            await CommandRunner.RunCheckedAsync(aptGet, ["update"], opts, ct);
        }
        p?.Report(new SetupProgress("packages", "apt-get install " + string.Join(' ', names)));
        var result = await CommandRunner.RunAsync(aptGet, InstallArgs(names), opts, ct);
        if (!result.Succeeded)
        {
            // Stale lists name package versions the mirror no longer has: refresh once and retry.
            p?.Report(new SetupProgress("packages", "install failed; apt-get update and retry"));
            await CommandRunner.RunCheckedAsync(aptGet, ["update"], opts, ct);
            await CommandRunner.RunCheckedAsync(aptGet, InstallArgs(names), opts, ct);
        }

        var still = Missing();
        if (still.Count > 0)
            throw new SetupException(
                $"apt-get reported success but these are still missing: {string.Join(", ", still.Select(s => $"{s.Name} ({string.Join(", ", s.Provides)})"))}");
        p?.Report(new SetupProgress("packages", "installed " + string.Join(' ', names)));
    }

    /// <summary>The exact shell commands a user should run to install <paramref name="packages"/>.</summary>
    public static string InstallCommands(IEnumerable<string> packages, bool sudo)
    {
        var prefix = sudo ? "sudo " : "";
        return $"  {prefix}apt-get update\n  {prefix}apt-get install -y --no-install-recommends {string.Join(' ', packages)}";
    }

    private static string[] InstallArgs(IEnumerable<string> names) =>
        ["install", "-y", "--no-install-recommends", .. names];

    /// <summary>Package lists exist once <c>apt-get update</c> has run at least once.</summary>
    public static bool AptListsPresent()
    {
        const string dir = "/var/lib/apt/lists";
        return Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*_Packages*").Any();
    }
}
