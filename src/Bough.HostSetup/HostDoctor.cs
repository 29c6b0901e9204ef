namespace Bough.HostSetup;

/// <summary>
/// Host-level checks of <c>bough doctor</c>: packages (with versions), data directory, free disk,
/// acceleration, the jail and written-page tracking. Guest kernel and base image checks live in <c>Bough.Images.Doctor</c>, which
/// calls this and adds them (HostSetup cannot see Images).
/// </summary>
public static class HostDoctor
{
    /// <summary>Below this much free space in the data dir, doctor fails (images + overlays need room).</summary>
    public const long FailFreeBytes = 2L << 30;
    /// <summary>Below this, doctor warns.</summary>
    public const long WarnFreeBytes = 8L << 30;

    /// <param name="kernelPath">Guest kernel for the KVM probe; when null the acceleration check reports what it can without booting.</param>
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(string dataDir, string accelRequested, CancellationToken ct,
        string? kernelPath = null, string? initrdPath = null, HostSystem? system = null, AccelProbeOptions? probeOptions = null)
    {
        var results = new List<CheckResult>();
        var req = new HostRequirements(system);
        var missing = new List<string>();
        foreach (var pkg in HostRequirements.All)
        {
            if (!req.IsInstalled(pkg))
            {
                missing.Add(pkg.Name);
                results.Add(new CheckResult($"package {pkg.Name}", false,
                    $"missing: {string.Join(", ", pkg.Provides)} not found ({pkg.Purpose})",
                    $"apt-get install -y --no-install-recommends {pkg.Name}"));
                continue;
            }
            var version = await PackageVersionAsync(pkg, ct);
            results.Add(new CheckResult($"package {pkg.Name}", true, version));
        }
        if (missing.Count > 0)
            results.Add(new CheckResult("packages", false, $"{missing.Count} missing",
                "run 'bough setup' as root, or:\n" + HostRequirements.InstallCommands(missing, sudo: true)));

        results.Add(CheckDataDir(dataDir));
        results.Add(CheckFreeSpace(dataDir));
        results.Add(await CheckAccelAsync(dataDir, accelRequested, kernelPath, initrdPath, probeOptions, ct));
        results.AddRange(await JailChecks.RunAsync(ct));
        results.Add(WriteTrackingCheck.Run());
        return results;
    }

    private static async Task<string> PackageVersionAsync(HostPackage pkg, CancellationToken ct)
    {
        try
        {
            if (pkg.Name == "qemu-system-x86")
                return await QemuInfo.VersionAsync(ct);
            var r = await CommandRunner.RunAsync("dpkg-query", ["-W", "-f=${Version}", pkg.Name],
                new CommandOptions { Timeout = TimeSpan.FromSeconds(20) }, ct);
            var where = string.Join(", ", pkg.Provides.Select(x => x.StartsWith('/') ? x : CommandLocator.Find(x) ?? x));
            return r.Succeeded && r.Stdout.Trim().Length > 0 ? $"{r.Stdout.Trim()} ({where})" : $"present ({where})";
        }
        catch (Exception e) when (e is SetupException or TimeoutException or IOException)
        {
            return "present (version unknown: " + e.Message + ")";
        }
    }

    private static CheckResult CheckDataDir(string dataDir)
    {
        try
        {
            Directory.CreateDirectory(dataDir);
            var probe = Path.Combine(dataDir, $".doctor-{Guid.NewGuid():N}");
            File.WriteAllText(probe, "ok");
            File.Delete(probe);
            return new CheckResult("data directory", true, $"{dataDir} is writable");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new CheckResult("data directory", false, $"{dataDir} is not writable: {e.Message}",
                "choose another with --data-dir or BOUGH_HOME, or fix its permissions");
        }
    }

    private static CheckResult CheckFreeSpace(string dataDir)
    {
        try
        {
            var dir = dataDir;
            while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent) dir = parent;
            var free = new DriveInfo(dir).AvailableFreeSpace;
            var text = $"{Gib(free)} free in {dataDir}";
            if (free < FailFreeBytes)
                return new CheckResult("free disk", false, text + $" (need at least {Gib(FailFreeBytes)})", "free some space or move the data dir");
            if (free < WarnFreeBytes)
                return new CheckResult("free disk", true, text + $" (below {Gib(WarnFreeBytes)}: sandboxes may run out)") { Warning = true };
            return new CheckResult("free disk", true, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return new CheckResult("free disk", false, "could not determine free space: " + e.Message);
        }
    }

    private static async Task<CheckResult> CheckAccelAsync(string dataDir, string requested, string? kernel, string? initrd,
        AccelProbeOptions? probeOptions, CancellationToken ct)
    {
        var probe = new AccelerationProbe(options: probeOptions);
        try
        {
            if (requested == "auto" && (kernel is null || initrd is null))
                return new CheckResult("acceleration", true,
                    "not decided yet: the KVM probe needs the guest kernel (run 'bough setup')") { Warning = true };
            var d = await probe.DecideAsync(requested, kernel ?? "", initrd ?? "", dataDir, ct);
            return new CheckResult("acceleration", true, $"{d.Accel}: {d.Reason}") { Warning = d.Accel == "tcg" && requested == "auto" };
        }
        catch (SetupException e)
        {
            return new CheckResult("acceleration", false, e.Message, "use --accel tcg or auto");
        }
    }

    private static string Gib(long bytes) => $"{bytes / (double)(1L << 30):0.0} GiB";
}
