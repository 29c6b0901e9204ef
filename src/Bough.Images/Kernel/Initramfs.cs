using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Bough.HostSetup;

namespace Bough.Images.Kernel;

/// <summary>
/// Builds the guest initramfs: static busybox, the virtio modules the cloud kernel keeps outside
/// the bzImage, and an /init that loads them and hands over to the root disk. It is deliberately
/// tiny: the only thing it must do is make /dev/vda appear and <c>switch_root</c> onto it (to
/// <c>/.bough/init</c> when the disk has one, else <c>/sbin/init</c>).
/// </summary>
public static class Initramfs
{
    /// <summary>Bump when the init script or the archive layout changes so existing initramfs files are rebuilt.</summary>
    public const int RecipeVersion = 2;

    /// <summary>
    /// Load order matters: each module needs symbols of the ones before it
    /// (virtio before virtio_ring fails with "unknown symbol").
    /// </summary>
    public static IReadOnlyList<string> Modules { get; } =
        ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "failover", "net_failover", "virtio_net"];

    /// <summary>The /init script. Everything it cannot do is reported on the console with <see cref="GuestMarkers.InitFailed"/>.</summary>
    public static string InitScript { get; } = $$"""
        #!/bin/busybox sh
        # Bough guest initramfs: load virtio modules, then switch to the ext4 root on /dev/vda.
        /bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
        /bin/busybox --install -s
        export PATH=/sbin:/bin:/usr/sbin:/usr/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        exec </dev/console >/dev/console 2>&1

        fail() {
            echo "{{GuestMarkers.InitFailed}}: $*"
            echo "--- /proc/cmdline: $(cat /proc/cmdline)"
            sleep 1
            poweroff -f
        }

        for m in {{string.Join(' ', Modules)}}; do
            [ -f /lib/modules/$m.ko ] || fail "module $m.ko is missing from the initramfs"
            insmod /lib/modules/$m.ko || fail "insmod $m failed"
        done

        case " $(cat /proc/cmdline) " in
            *" {{AccelerationProbe.ProbeKernelArg}} "*)
                echo "{{GuestMarkers.ProbeOk}}"
                poweroff -f
                ;;
        esac

        i=0
        while [ ! -b /dev/vda ]; do
            i=$((i + 1))
            [ $i -gt 200 ] && fail "no root disk /dev/vda after 20 s (attach it with -device virtio-blk-device)"
            sleep 0.1
        done
        mount -t ext4 -o rw /dev/vda /newroot || fail "cannot mount /dev/vda as ext4"
        # User images (OCI, recipes) carry the Bough runtime and its init under /.bough; the image's
        # own init is never run. The base image has none and boots busybox init.
        init=/sbin/init
        [ -x /newroot/.bough/init ] && init=/.bough/init
        [ -x /newroot$init ] || fail "$init is missing on the root disk"
        mkdir -p /newroot/dev /newroot/proc /newroot/sys
        mount --move /dev /newroot/dev || fail "cannot move /dev to the new root"
        umount /sys /proc
        exec switch_root /newroot $init
        fail "switch_root failed"
        """;

    /// <summary>Hash of everything that goes into the archive, to tell when a rebuild is due.</summary>
    public static async Task<string> InputHashAsync(string busyboxPath, string modulesDir, CancellationToken ct)
    {
        var sb = new StringBuilder($"recipe={RecipeVersion}\ninit={InitScript}\nbusybox={await Files.Sha256Async(busyboxPath, ct)}\n");
        foreach (var m in Modules)
            sb.Append($"{m}={await Files.Sha256Async(Path.Combine(modulesDir, m + ".ko"), ct)}\n");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>
    /// Writes a gzip-compressed newc cpio archive to <paramref name="output"/>. Files are owned by
    /// root in the archive whoever builds it (<c>cpio -R 0:0</c>).
    /// </summary>
    public static async Task BuildAsync(string busyboxPath, string modulesDir, string output, string workDir, CancellationToken ct)
    {
        if (!Elf.IsStatic(busyboxPath))
            throw new SetupException($"{busyboxPath} is not a static binary; install busybox-static (the initramfs has no libc)");
        var cpio = CommandLocator.Require("cpio", "cpio");

        // cpio stores each entry's mode, so every one is explicit: the daemon's umask (077) must not reach the archive.
        var root = Path.Combine(workDir, "initramfs-root");
        Files.TryDeleteDirectory(root);
        Files.CreateGuestRoot(root);
        foreach (var d in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "newroot", "tmp", "lib/modules" })
            Files.CreateDirectories(root, d);
        File.Copy(busyboxPath, Path.Combine(root, "bin/busybox"));
        Files.SetMode(Path.Combine(root, "bin/busybox"), Files.Exec755);
        File.CreateSymbolicLink(Path.Combine(root, "bin/sh"), "busybox");
        foreach (var m in Modules)
        {
            var src = Path.Combine(modulesDir, m + ".ko");
            if (!File.Exists(src)) throw new SetupException($"kernel module {src} is missing; cannot build the initramfs");
            var module = Path.Combine(root, "lib/modules", m + ".ko");
            File.Copy(src, module);
            Files.SetMode(module, Files.Public644);
        }
        Files.WriteText(Path.Combine(root, "init"), InitScript + "\n", Files.Exec755);

        // Parents before children, as cpio -o wants them; "." first so the root dir gets mode 0755.
        var entries = new List<string> { "." };
        entries.AddRange(Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Select(e => Path.GetRelativePath(root, e)).Order(StringComparer.Ordinal));

        var cpioFile = Path.Combine(workDir, "initramfs.cpio");
        await CommandRunner.RunCheckedAsync(cpio, ["--quiet", "-o", "-H", "newc", "-R", "0:0", "-O", cpioFile],
            new CommandOptions { WorkingDirectory = root, Stdin = string.Join('\n', entries) + "\n" }, ct);

        await using (var input = File.OpenRead(cpioFile))
        await using (var outFile = File.Create(output))
        await using (var gz = new GZipStream(outFile, CompressionLevel.Optimal))
            await input.CopyToAsync(gz, ct);
        File.Delete(cpioFile);
        Files.TryDeleteDirectory(root);
    }
}
