using System.Diagnostics;
using System.IO.Compression;
using System.Text;

namespace Bough.Vmm.Tests;

/// <summary>
/// A bootable test guest: the Debian cloud kernel (fetched once into a cache with apt) plus a
/// busybox initramfs built here. The guest loads the virtio modules, configures user-mode
/// networking, serves HTTP on <see cref="GuestHttpPort"/>, pings on the agent port, and prints
/// <see cref="ReadyMarker"/> on the console.
/// </summary>
public sealed class GuestFixture : IDisposable
{
    public const string ReadyMarker = "BOUGH-TEST-READY";
    public const string HttpBody = "hello-from-guest";
    public const string AgentPing = "AGENT-PING";
    public const string FloodDone = "BOUGH-FLOOD-DONE";
    public const int GuestHttpPort = 8080;
    /// <summary>tsc_early_khz avoids a TSC calibration hang under TCG on a loaded host (see <see cref="HostTsc"/>).</summary>
    public static readonly string KernelCmdline =
        ("console=ttyS0 panic=-1 quiet rdinit=/init " + (HostTsc.KernelArgument() ?? "")).Trim();

    private static readonly string[] Modules =
        ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "failover", "net_failover", "virtio_net"];

    private readonly string _workDir;

    public GuestFixture()
    {
        CacheDir = Environment.GetEnvironmentVariable("BOUGH_TEST_CACHE") ?? "/var/tmp/bough-test-cache/vmm";
        Directory.CreateDirectory(CacheDir);
        string extracted = Path.Combine(CacheDir, "kernel");
        KernelPath = FindKernel(extracted) ?? FetchKernel(extracted);
        string version = Path.GetFileName(KernelPath)["vmlinuz-".Length..];
        _workDir = Path.Combine("/tmp/bough-vmm-tests", "guest-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_workDir);
        InitrdPath = Path.Combine(_workDir, "initrd.gz");
        BuildInitramfs(Path.Combine(extracted, "lib", "modules", version), InitrdPath);
    }

    public string CacheDir { get; }
    public string KernelPath { get; }
    public string InitrdPath { get; }

    /// <summary>Creates an empty qcow2 disk for one VM (the guest runs from its initramfs).</summary>
    public static string CreateDisk(string dir)
    {
        string path = Path.Combine(dir, "disk.qcow2");
        Run("qemu-img", ["create", "-q", "-f", "qcow2", path, "64M"], dir);
        return path;
    }

    public VmSpec Spec(string runtimeDir, string name) => new()
    {
        Name = name,
        RuntimeDir = runtimeDir,
        KernelPath = KernelPath,
        InitrdPath = InitrdPath,
        KernelCmdline = KernelCmdline,
        DiskPath = CreateDisk(runtimeDir),
        Accel = "tcg",
        MemoryMiB = 256,
        Ports = [new PortForward(GuestHttpPort, 0)],
    };

    private static string? FindKernel(string extracted)
    {
        string boot = Path.Combine(extracted, "boot");
        return Directory.Exists(boot) ? Directory.GetFiles(boot, "vmlinuz-*").OrderBy(f => f).LastOrDefault() : null;
    }

    /// <summary>apt-get download of the package behind linux-image-cloud-amd64, then dpkg-deb -x.</summary>
    private string FetchKernel(string extracted)
    {
        string depends = Run("apt-cache", ["depends", "linux-image-cloud-amd64"], CacheDir);
        string package = depends.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("Depends: linux-image-", StringComparison.Ordinal))
            .Select(l => l["Depends: ".Length..])
            .FirstOrDefault() ?? throw new InvalidOperationException("Cannot resolve linux-image-cloud-amd64: " + depends);
        string deb = Directory.GetFiles(CacheDir, package + "_*.deb").FirstOrDefault() ?? "";
        if (deb.Length == 0)
        {
            Run("apt-get", ["download", package], CacheDir);
            deb = Directory.GetFiles(CacheDir, package + "_*.deb").Single();
        }
        string tmp = extracted + ".tmp-" + Environment.ProcessId;
        Run("dpkg-deb", ["-x", deb, tmp], CacheDir);
        if (!Directory.Exists(extracted)) Directory.Move(tmp, extracted);
        else Directory.Delete(tmp, true);
        return FindKernel(extracted) ?? throw new InvalidOperationException($"No vmlinuz in {deb}");
    }

    private static void BuildInitramfs(string moduleRoot, string output)
    {
        using var file = System.IO.File.Create(output);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        var cpio = new CpioWriter(gz);
        foreach (string d in new[] { "bin", "dev", "proc", "sys", "tmp", "www", "modules" }) cpio.Directory(d);
        cpio.CharDevice("dev/console", 5, 1);
        cpio.CharDevice("dev/null", 1, 3, 0x1B6);
        cpio.File("bin/busybox", System.IO.File.ReadAllBytes("/bin/busybox"));
        cpio.File("www/index.html", Encoding.ASCII.GetBytes(HttpBody + "\n"), 0x1A4);
        foreach (string m in Modules)
        {
            string ko = Directory.EnumerateFiles(moduleRoot, m + ".ko*", SearchOption.AllDirectories)
                .First(f => Path.GetFileName(f) == m + ".ko");
            cpio.File($"modules/{m}.ko", System.IO.File.ReadAllBytes(ko), 0x1A4);
        }
        cpio.File("init", Encoding.ASCII.GetBytes(InitScript()));
        cpio.Finish();
    }

    private static string InitScript() => $$"""
        #!/bin/busybox sh
        /bin/busybox --install -s /bin
        export PATH=/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        for m in {{string.Join(' ', Modules)}}; do insmod /modules/$m.ko || echo "insmod $m failed"; done
        ip link set lo up
        ip link set eth0 up
        ip addr add 10.0.2.15/24 dev eth0
        ip route add default via 10.0.2.2
        httpd -p {{GuestHttpPort}} -h /www
        (
          port=""
          while [ -z "$port" ]; do
            for d in /sys/class/virtio-ports/*; do
              [ "$(cat $d/name 2>/dev/null)" = "{{QemuCommandLine.AgentPortName}}" ] && port=/dev/$(basename $d)
            done
            [ -z "$port" ] && sleep 0.2
          done
          while true; do echo {{AgentPing}} > $port; sleep 1; done
        ) &
        echo {{ReadyMarker}}
        # Tests of the console cap boot with bough_flood=N: N numbered lines to the serial console, then a marker.
        for a in $(cat /proc/cmdline); do
          case $a in bough_flood=*) seq 1 ${a#bough_flood=} > /dev/ttyS0; echo {{FloodDone}} > /dev/ttyS0;; esac
        done
        while true; do sleep 3600; done
        """.Replace("\r", "") + "\n";

    internal static string Run(string file, string[] args, string cwd)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = cwd };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Result}");
        return stdout;
    }

    public void Dispose()
    {
        try { Directory.Delete(_workDir, true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class VmGroup : ICollectionFixture<GuestFixture>
{
    /// <summary>VM tests run one at a time: the CI machine has two cores shared by everyone.</summary>
    public const string Name = "vm";
}
