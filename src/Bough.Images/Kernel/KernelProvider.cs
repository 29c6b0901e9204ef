using System.Text.Json;
using Bough.HostSetup;
using Bough.Images.Concurrency;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Images.Kernel;

/// <summary>
/// Provides the guest kernel: Debian's cloud kernel (small, virtio as modules, boots directly on
/// <c>-M microvm</c>), fetched from the archive apt is configured with, hash-checked, and stored with
/// the initramfs under <c>&lt;data&gt;/kernel/&lt;version&gt;/</c>. Published by renaming a finished
/// staging directory and then flipping <c>&lt;data&gt;/kernel/current</c>, so readers never see a half install.
/// </summary>
public sealed class KernelProvider
{
    /// <summary>Debian's meta package; it depends on the current ABI's real kernel package.</summary>
    public const string MetaPackage = "linux-image-cloud-amd64";

    /// <summary>
    /// What QEMU passes with <c>-append</c>. <c>console=ttyS0</c>: the console is the first serial port;
    /// <c>panic=-1</c>: a guest panic reboots at once, which <c>-no-reboot</c> turns into QEMU exiting;
    /// <c>quiet</c>: only our init's lines reach the console, which keeps boot fast under TCG.
    /// The full command line adds <c>tsc_early_khz</c> for this host (see <see cref="HostClock"/>).
    /// </summary>
    public const string DefaultCommandLine = "console=ttyS0 panic=-1 quiet";

    /// <summary>
    /// <see cref="DefaultCommandLine"/> plus the host TSC frequency; without it a TCG guest on a busy
    /// host fails TSC calibration and hangs early in boot (observed on every boot at load 12 on 2 cores).
    /// </summary>
    public static string CommandLineForThisHost() => (DefaultCommandLine + " " + HostClock.GuestKernelArg()).Trim();

    private readonly string _dataDir;
    private readonly ILogger _log;
    private readonly DebianArchive _archive;
    private readonly string _busybox;
    private readonly SingleFlight<string, Flight<GuestKernel>> _ensure = new(StringComparer.Ordinal);

    public KernelProvider(string dataDir, ILogger<KernelProvider>? l = null)
        : this(dataDir, l, null, null) { }

    /// <param name="busyboxPath">Static busybox for the initramfs (default /bin/busybox).</param>
    public KernelProvider(string dataDir, ILogger? logger, HostSystem? system, string? busyboxPath)
    {
        _dataDir = Path.GetFullPath(dataDir);
        _log = logger ?? NullLogger.Instance;
        _archive = new DebianArchive(system);
        _busybox = busyboxPath ?? HostRequirements.BusyboxPath;
    }

    public string KernelRoot => Path.Combine(_dataDir, "kernel");
    private string CurrentFile => Path.Combine(KernelRoot, "current");

    private sealed record KernelManifest(string Version, string Package, string PackageSha256, string InitrdInputHash, DateTimeOffset InstalledAt);

    /// <summary>The installed kernel, or null when none is (no network, no side effects).</summary>
    public GuestKernel? TryGet()
    {
        try
        {
            if (!File.Exists(CurrentFile)) return null;
            var version = File.ReadAllText(CurrentFile).Trim();
            if (version.Length == 0 || version.Contains('/')) return null;
            var dir = Path.Combine(KernelRoot, version);
            var k = new GuestKernel(Path.Combine(dir, "vmlinuz"), Path.Combine(dir, "initrd.img"), version, CommandLineForThisHost());
            return File.Exists(k.KernelPath) && File.Exists(k.InitrdPath) && File.Exists(Path.Combine(dir, "kernel.json")) ? k : null;
        }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// Returns the installed kernel (rebuilding its initramfs if the init recipe or busybox changed),
    /// or downloads and installs the current Debian cloud kernel. Concurrent calls share one run.
    /// </summary>
    public Task<GuestKernel> EnsureAsync(IProgress<SetupProgress>? p, CancellationToken ct) =>
        _ensure.RunAsync(MetaPackage, token => EnsureCoreAsync(p, token), ct);

    private async Task<GuestKernel> EnsureCoreAsync(IProgress<SetupProgress>? p, CancellationToken ct)
    {
        Directory.CreateDirectory(KernelRoot);
        using var _ = await FileLock.AcquireAsync(Path.Combine(KernelRoot, ".lock"), ct);
        var staging = Path.Combine(KernelRoot, ".staging");
        // Holding the lock means no other builder is using a staging dir: leftovers are from crashes.
        Files.TryDeleteDirectory(staging);

        var existing = TryGet();
        if (existing is not null)
        {
            await RefreshInitrdIfStaleAsync(existing, staging, p, ct);
            return existing;
        }

        var work = Files.NewStagingDir(staging);
        try
        {
            p?.Report(new SetupProgress("kernel", $"resolving {MetaPackage}"));
            var package = await _archive.ResolveDependencyAsync(MetaPackage, "linux-image-", ct);
            var deb = await DebianArchive.LocateAsync(package, ct);
            _log.LogInformation("fetching guest kernel {Package} from {Url} ({Size} bytes)", package, deb.Url, deb.Size);

            var debFile = Path.Combine(work, deb.FileName);
            await DebianArchive.DownloadAsync(deb, debFile, p, ct);

            p?.Report(new SetupProgress("kernel", $"unpacking {deb.FileName}"));
            var extract = Path.Combine(work, "extract");
            Directory.CreateDirectory(extract);
            await CommandRunner.RunCheckedAsync(CommandLocator.Require("dpkg-deb", "dpkg"), ["-x", debFile, extract], null, ct);
            File.Delete(debFile);

            var vmlinuz = Directory.EnumerateFiles(Path.Combine(extract, "boot"), "vmlinuz-*").SingleOrDefault()
                ?? throw new SetupException($"{deb.FileName} contains no boot/vmlinuz-*");
            var version = Path.GetFileName(vmlinuz)["vmlinuz-".Length..];

            var output = Path.Combine(work, "out");
            var modulesOut = Path.Combine(output, "modules");
            Directory.CreateDirectory(modulesOut);
            File.Copy(vmlinuz, Path.Combine(output, "vmlinuz"));
            CopyModules(Path.Combine(extract, "lib", "modules", version), modulesOut, deb.FileName);
            Files.TryDeleteDirectory(extract);

            p?.Report(new SetupProgress("kernel", "building initramfs"));
            await Initramfs.BuildAsync(_busybox, modulesOut, Path.Combine(output, "initrd.img"), work, ct);
            var manifest = new KernelManifest(version, $"{package} {deb.FileName}", deb.Hash,
                await Initramfs.InputHashAsync(_busybox, modulesOut, ct), DateTimeOffset.UtcNow);
            File.WriteAllText(Path.Combine(output, "kernel.json"), JsonSerializer.Serialize(manifest, JsonOptions));

            var final = Path.Combine(KernelRoot, version);
            Files.TryDeleteDirectory(final); // an unpublished leftover (no 'current' pointed at it)
            Directory.Move(output, final);
            Files.WriteAtomic(CurrentFile, version + "\n");
            p?.Report(new SetupProgress("kernel", $"guest kernel {version} installed"));
            return TryGet() ?? throw new SetupException($"kernel {version} was installed into {final} but cannot be read back");
        }
        finally
        {
            Files.TryDeleteDirectory(work);
        }
    }

    /// <summary>Only the initramfs is rebuilt when our init recipe or the host busybox changed; no download.</summary>
    private async Task RefreshInitrdIfStaleAsync(GuestKernel k, string staging, IProgress<SetupProgress>? p, CancellationToken ct)
    {
        var dir = Path.GetDirectoryName(k.KernelPath)!;
        var manifestFile = Path.Combine(dir, "kernel.json");
        var manifest = JsonSerializer.Deserialize<KernelManifest>(await File.ReadAllTextAsync(manifestFile, ct))
            ?? throw new SetupException($"{manifestFile} is empty");
        var modules = Path.Combine(dir, "modules");
        var hash = await Initramfs.InputHashAsync(_busybox, modules, ct);
        if (hash == manifest.InitrdInputHash) return;

        p?.Report(new SetupProgress("kernel", "rebuilding initramfs (init recipe or busybox changed)"));
        var work = Files.NewStagingDir(staging);
        try
        {
            var tmp = Path.Combine(work, "initrd.img");
            await Initramfs.BuildAsync(_busybox, modules, tmp, work, ct);
            File.Move(tmp, k.InitrdPath, overwrite: true);
            Files.WriteAtomic(manifestFile, JsonSerializer.Serialize(manifest with { InitrdInputHash = hash }, JsonOptions));
        }
        finally { Files.TryDeleteDirectory(work); }
    }

    private static void CopyModules(string moduleTree, string destination, string debName)
    {
        if (!Directory.Exists(moduleTree))
            throw new SetupException($"{debName} has no module tree {moduleTree}");
        var all = Directory.EnumerateFiles(moduleTree, "*.ko*", SearchOption.AllDirectories).ToList();
        foreach (var m in Initramfs.Modules)
        {
            var file = all.FirstOrDefault(f => Path.GetFileName(f) == m + ".ko");
            if (file is null)
            {
                var compressed = all.FirstOrDefault(f => Path.GetFileName(f).StartsWith(m + ".ko.", StringComparison.Ordinal));
                throw new SetupException(compressed is null
                    ? $"kernel module {m}.ko is not in {debName}"
                    : $"kernel module {m} is compressed ({Path.GetFileName(compressed)}); busybox insmod needs plain .ko files");
            }
            File.Copy(file, Path.Combine(destination, m + ".ko"));
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };
}
