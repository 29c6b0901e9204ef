using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.HostSetup;

/// <summary>Knobs of <see cref="AccelerationProbe"/>; the defaults are for real use, tests override them.</summary>
public sealed record AccelProbeOptions
{
    public string KvmDevice { get; init; } = "/dev/kvm";
    public string QemuBinary { get; init; } = QemuInfo.SystemBinary;
    /// <summary>How long the probe guest may take to print its marker. A KVM boot takes well under a second.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Chooses between KVM and TCG. <c>/dev/kvm</c> existing proves little: under nested or
/// paravirtualised setups it can run toy guests yet stop a Linux guest with "emulation failure" or
/// crawl. So <c>auto</c> boots our real guest kernel and initramfs under KVM in probe mode and uses
/// KVM only if the guest says it reached userspace. The result is cached per QEMU version, host
/// kernel and guest kernel, since the probe costs a boot.
/// </summary>
public sealed class AccelerationProbe(ILogger? logger = null, AccelProbeOptions? options = null)
{
    /// <summary>Kernel argument that makes the initramfs print <see cref="ProbeMarker"/> and power off.</summary>
    public const string ProbeKernelArg = "bough.probe=1";
    public const string ProbeMarker = "BOUGH_PROBE_OK";
    public const string CacheFileName = "accel.json";

    private readonly ILogger _log = logger ?? NullLogger.Instance;
    private readonly AccelProbeOptions _opt = options ?? new AccelProbeOptions();

    /// <param name="requested">auto, kvm or tcg.</param>
    /// <param name="kernelPath">Guest kernel used for the probe boot (only for auto).</param>
    /// <param name="initrdPath">Guest initramfs that understands <see cref="ProbeKernelArg"/>.</param>
    /// <param name="dataDir">Where the decision is cached (<c>cache/accel.json</c>).</param>
    public async Task<AccelDecision> DecideAsync(string requested, string kernelPath, string initrdPath, string dataDir, CancellationToken ct)
    {
        switch ((requested ?? "auto").Trim().ToLowerInvariant())
        {
            case "tcg":
                return new AccelDecision("tcg", "TCG requested");
            case "kvm":
                var err = KvmOpenError();
                if (err is not null)
                    throw new SetupException(
                        $"KVM was requested but {_opt.KvmDevice} cannot be used: {err}. " +
                        "Use --accel tcg (or auto), or give this user access to KVM (e.g. add it to the 'kvm' group).");
                return new AccelDecision("kvm", $"KVM requested and {_opt.KvmDevice} opens read-write");
            case "auto":
                return await DecideAutoAsync(kernelPath, initrdPath, dataDir, ct);
            default:
                throw new SetupException($"unknown acceleration '{requested}': use auto, kvm or tcg");
        }
    }

    private async Task<AccelDecision> DecideAutoAsync(string kernelPath, string initrdPath, string dataDir, CancellationToken ct)
    {
        var openError = KvmOpenError();
        if (openError is not null)
            return new AccelDecision("tcg", $"{_opt.KvmDevice} is not usable ({openError}); using TCG");

        var key = await CacheKeyAsync(kernelPath, initrdPath, ct);
        var cacheFile = Path.Combine(dataDir, "cache", CacheFileName);
        var cached = ReadCache(cacheFile, key);
        if (cached is not null)
        {
            _log.LogDebug("acceleration from cache: {Accel} ({Reason})", cached.Accel, cached.Reason);
            return cached;
        }

        _log.LogInformation("probing KVM with a guest boot (once per QEMU/kernel version)");
        var decision = await ProbeAsync(kernelPath, initrdPath, ct);
        WriteCache(cacheFile, key, decision);
        _log.LogInformation("acceleration: {Accel} ({Reason})", decision.Accel, decision.Reason);
        return decision;
    }

    /// <summary>Null when the KVM device opens read-write, else why not.</summary>
    private string? KvmOpenError()
    {
        try
        {
            using var fs = new FileStream(_opt.KvmDevice, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.None);
            return null;
        }
        catch (FileNotFoundException) { return "it does not exist (no KVM support in this kernel or VM)"; }
        catch (DirectoryNotFoundException) { return "it does not exist"; }
        catch (UnauthorizedAccessException) { return "permission denied"; }
        catch (IOException e) { return e.Message; }
    }

    /// <summary>Boots the guest in probe mode under KVM and reports what happened. QEMU is always killed.</summary>
    private async Task<AccelDecision> ProbeAsync(string kernelPath, string initrdPath, CancellationToken ct)
    {
        foreach (var f in new[] { kernelPath, initrdPath })
            if (!File.Exists(f))
                throw new SetupException($"cannot probe KVM: guest file {f} is missing (fetch the guest kernel first)");

        var psi = new ProcessStartInfo(_opt.QemuBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
            "-no-reboot", "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", kernelPath, "-initrd", initrdPath,
            "-append", $"console=ttyS0 panic=-1 quiet {ProbeKernelArg} {HostClock.GuestKernelArg()}".TrimEnd(),
            "-serial", "stdio",
        }) psi.ArgumentList.Add(a);

        var sw = Stopwatch.StartNew();
        using var qemu = new Process { StartInfo = psi };
        try { qemu.Start(); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SetupException($"could not run {_opt.QemuBinary}: {e.Message} (install qemu-system-x86)", e);
        }

        var console = new StringBuilder();
        var stderr = new StringBuilder();
        var verdict = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var lockObj = new object();

        // KVM trouble usually appears on stderr ("KVM internal error ... emulation failure") while QEMU
        // keeps running with the vCPU paused, so we must watch it rather than wait for an exit.
        var readOut = Task.Run(async () =>
        {
            while (await qemu.StandardOutput.ReadLineAsync(CancellationToken.None) is { } line)
            {
                lock (lockObj) console.AppendLine(line);
                if (line.Contains(ProbeMarker, StringComparison.Ordinal)) verdict.TrySetResult(null);
            }
        }, CancellationToken.None);
        var readErr = Task.Run(async () =>
        {
            while (await qemu.StandardError.ReadLineAsync(CancellationToken.None) is { } line)
            {
                lock (lockObj) stderr.AppendLine(line);
                if (line.Contains("emulation failure", StringComparison.OrdinalIgnoreCase) ||
                    line.Contains("KVM internal error", StringComparison.OrdinalIgnoreCase))
                    verdict.TrySetResult("KVM error: " + line.Trim());
            }
        }, CancellationToken.None);

        try
        {
            var exited = qemu.WaitForExitAsync(ct).ContinueWith(_ => "exit", TaskScheduler.Default);
            var timeout = Task.Delay(_opt.ProbeTimeout, ct);
            var first = await Task.WhenAny(verdict.Task, exited, timeout);
            ct.ThrowIfCancellationRequested();

            if (first == verdict.Task && await verdict.Task is null)
                return new AccelDecision("kvm", $"KVM works: a probe guest booted under {_opt.KvmDevice} in {sw.Elapsed.TotalSeconds:0.0} s");

            // Give stderr a moment to deliver the rest of a multi-line KVM error report.
            await Task.Delay(200, CancellationToken.None);
            string seen;
            lock (lockObj)
            {
                if (first == verdict.Task) seen = Summarize(stderr.ToString(), "KVM error");
                else if (first == exited) seen = $"QEMU exited with code {SafeExitCode(qemu)} before the guest reached userspace: {Summarize(stderr.ToString() + console, "no output")}";
                else seen = $"no sign of life from the guest within {_opt.ProbeTimeout.TotalSeconds:0} s" +
                            (stderr.Length > 0 ? $" ({Summarize(stderr.ToString(), "")})" : " (it hung or crawled)");
            }
            return new AccelDecision("tcg", $"{_opt.KvmDevice} is present but a Linux guest failed under it: {seen}; using TCG");
        }
        finally
        {
            CommandRunner.Kill(qemu);
            await qemu.WaitForExitAsync(CancellationToken.None);
            await Task.WhenAll(readOut, readErr).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private static int SafeExitCode(Process p) { try { return p.ExitCode; } catch (InvalidOperationException) { return -1; } }

    private static string Summarize(string text, string fallback)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("RAX=") && !l.StartsWith("RSI=") && !l.StartsWith("R8 =") && !l.StartsWith("R12=")
                        && !l.StartsWith("RIP=") && !l.StartsWith("ES =") && !l.StartsWith("CS =") && !l.StartsWith("SS =")
                        && !l.StartsWith("DS =") && !l.StartsWith("FS =") && !l.StartsWith("GS =") && !l.StartsWith("LDT=")
                        && !l.StartsWith("TR =") && !l.StartsWith("GDT=") && !l.StartsWith("IDT=") && !l.StartsWith("CR0=")
                        && !l.StartsWith("DR") && !l.StartsWith("EFER=") && !l.StartsWith("Code="))
            .Take(3).ToList();
        var s = lines.Count == 0 ? fallback : string.Join(" / ", lines);
        return s.Length > 300 ? s[..300] + "..." : s;
    }

    private async Task<string> CacheKeyAsync(string kernelPath, string initrdPath, CancellationToken ct)
    {
        var qemu = await QemuInfo.VersionAsync(ct, _opt.QemuBinary);
        return $"{qemu}|{QemuInfo.HostKernelRelease()}|{await HashFileAsync(kernelPath, ct)}|{await HashFileAsync(initrdPath, ct)}";
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken ct)
    {
        try
        {
            await using var fs = File.OpenRead(path);
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct));
        }
        catch (FileNotFoundException) { return "missing"; }
    }

    private sealed record CacheEntry(string Key, string Accel, string Reason, DateTimeOffset DecidedAt);

    private AccelDecision? ReadCache(string file, string key)
    {
        try
        {
            if (!File.Exists(file)) return null;
            var e = JsonSerializer.Deserialize<CacheEntry>(File.ReadAllText(file));
            return e is not null && e.Key == key ? new AccelDecision(e.Accel, e.Reason + " (probed " + e.DecidedAt.ToString("u") + ")") : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException)
        {
            _log.LogWarning("ignoring unreadable acceleration cache {File}: {Error}", file, ex.Message);
            return null;
        }
    }

    private static void WriteCache(string file, string key, AccelDecision d)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var tmp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new CacheEntry(key, d.Accel, d.Reason, DateTimeOffset.UtcNow)));
        File.Move(tmp, file, overwrite: true);
    }
}
