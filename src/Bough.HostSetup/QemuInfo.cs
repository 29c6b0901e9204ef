namespace Bough.HostSetup;

/// <summary>Facts about the installed QEMU.</summary>
public static class QemuInfo
{
    public const string SystemBinary = "qemu-system-x86_64";

    /// <summary>First line of <c>qemu-system-x86_64 --version</c>, e.g. "QEMU emulator version 7.2.22 (...)".</summary>
    public static async Task<string> VersionAsync(CancellationToken ct, string binary = SystemBinary)
    {
        var r = await CommandRunner.RunCheckedAsync(binary, ["--version"], new CommandOptions { Timeout = TimeSpan.FromSeconds(20) }, ct);
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "unknown";
    }

    /// <summary>The host kernel release (<c>uname -r</c>); KVM behaviour depends on it.</summary>
    public static string HostKernelRelease()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (IOException) { return Environment.OSVersion.VersionString; }
    }
}
