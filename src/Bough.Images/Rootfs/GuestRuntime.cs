using System.Security.Cryptography;
using System.Text;
using Bough.HostSetup;

namespace Bough.Images.Rootfs;

/// <summary>
/// The guest runtime every user image gets under <c>/.bough</c>, independent of the image's own libc
/// and tools (glibc of any age, musl, distroless, no shell at all):
/// <code>
/// /.bough/init                 PID 1 (a busybox sh script): mounts, network, agent respawn loop
/// /.bough/bin/busybox          the host's static busybox; every tool init uses is an applet of it
/// /.bough/bin/bough-agent      the agent, its PT_INTERP rewritten to /.bough/lib/ld.so
/// /.bough/lib/                 the host glibc loader (ld.so) and the libraries the agent needs
/// </code>
/// The agent runs with LD_LIBRARY_PATH=/.bough/lib so its private loader never picks up the image's
/// libraries; the agent builds every command's environment explicitly, so that variable stays its own.
/// The image's own init is not run (like Docker); the initramfs starts <c>/.bough/init</c> when present.
/// </summary>
public static class GuestRuntime
{
    /// <summary>Bump when the layout or the init script changes.</summary>
    public const int Version = 1;

    public const string Dir = "/.bough";
    public const string InitPath = "/.bough/init";
    public const string BusyboxPath = "/.bough/bin/busybox";
    public const string AgentPath = "/.bough/bin/bough-agent";
    public const string LibDir = "/.bough/lib";
    /// <summary>Same length budget as the host loader path it replaces (27 bytes + NUL).</summary>
    public const string LoaderPath = "/.bough/lib/ld.so";

    /// <summary>
    /// PID 1. busybox ash waits for its foreground child with waitpid(-1), so while the agent runs it
    /// also reaps every orphan reparented to init (commands' daemonised children): no zombies pile up.
    /// Everything is spelled <c>$B applet</c> because the image may have no /bin/sh and no tools.
    /// </summary>
    public static readonly string InitScript = $$"""
        #!{{BusyboxPath}} sh
        # Bough guest init for user images (generated; see GuestRuntime.cs). Runs as PID 1.
        B={{BusyboxPath}}
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        mounted() { $B grep -q " $1 " /proc/mounts 2>/dev/null; }
        $B mkdir -p /proc /sys /dev /run /tmp
        mounted /proc || $B mount -t proc proc /proc
        mounted /sys || $B mount -t sysfs sysfs /sys
        mounted /dev || $B mount -t devtmpfs devtmpfs /dev
        $B mkdir -p /dev/pts /dev/shm
        mounted /dev/pts || $B mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
        mounted /dev/shm || $B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
        mounted /run || $B mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
        $B chmod 1777 /tmp
        [ -e /dev/fd ] || $B ln -s /proc/self/fd /dev/fd
        [ -e /dev/stdin ] || $B ln -s /proc/self/fd/0 /dev/stdin
        [ -e /dev/stdout ] || $B ln -s /proc/self/fd/1 /dev/stdout
        [ -e /dev/stderr ] || $B ln -s /proc/self/fd/2 /dev/stderr
        [ -e /dev/ptmx ] || $B ln -s pts/ptmx /dev/ptmx

        # Stable names for virtio-serial ports (what udev would do): /dev/virtio-ports/<name>.
        $B mkdir -p /dev/virtio-ports
        for p in /sys/class/virtio-ports/*; do
            [ -f "$p/name" ] || continue
            $B ln -sf "../$($B basename "$p")" "/dev/virtio-ports/$($B cat "$p/name")"
        done

        $B hostname -F /etc/hostname 2>/dev/null || $B hostname {{GuestNetwork.DefaultHostname}}

        $B ip link set lo up
        if [ -e /sys/class/net/eth0 ]; then
            $B ip addr add {{GuestNetwork.Ip}}/24 dev eth0
            $B ip link set eth0 up
            $B ip route add default via {{GuestNetwork.Gateway}}
        else
            echo "bough: no eth0; networking is off"
        fi

        echo "{{GuestMarkers.InitDone}} uptime=$($B cut -d' ' -f1 /proc/uptime)"

        $B mkdir -p /run/bough-agent
        while :; do
            LD_LIBRARY_PATH={{LibDir}} HOME=/root DOTNET_BUNDLE_EXTRACT_BASE_DIR=/run/bough-agent \
                DOTNET_CLI_TELEMETRY_OPTOUT=1 {{AgentPath}}
            echo "bough-agent exited with status $?; restarting"
            $B sleep 1
        done
        """;

    /// <summary>Hash of everything <see cref="InjectAsync"/> writes that is not an input file, for cache keys.</summary>
    public static string RecipeHash() => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Version}\0{InitScript}")));

    /// <summary>
    /// Writes <c>/.bough</c> (replacing any the image had), the network files in /etc, the mount
    /// points, and <paramref name="workingDir"/>. Never follows a symlink of the image out of
    /// <paramref name="root"/>: a layer may plant <c>/etc -&gt; /host-path</c>.
    /// </summary>
    public static async Task InjectAsync(string root, string busyboxPath, string agentPath, string? workingDir, CancellationToken ct)
    {
        root = Path.GetFullPath(root);
        if (!Elf.IsStatic(busyboxPath))
            throw new SetupException($"{busyboxPath} is not a static binary; install busybox-static (images may have no libc)");
        var libs = AgentLibraries.FindOnHost();

        var dir = Path.Combine(root, Dir.TrimStart('/'));
        RemoveAny(dir);
        // Every mode below is explicit: the daemon's umask (077) would make the runtime unusable for the guest's other users.
        var bin = Files.CreateDirectories(root, Dir.TrimStart('/') + "/bin");
        var lib = Files.CreateDirectories(root, LibDir.TrimStart('/'));

        await CopyAsync(busyboxPath, Path.Combine(bin, "busybox"), ct);
        var agent = Path.Combine(bin, "bough-agent");
        await CopyAsync(agentPath, agent, ct);
        ElfInterpreter.Patch(agent, LoaderPath);
        foreach (var (name, hostPath) in libs)
            await CopyAsync(hostPath, Path.Combine(lib, name == "ld-linux-x86-64.so.2" ? "ld.so" : name), ct);
        // libc.so.6 lists the loader by soname; ld.so recognises itself by it, the link is for tools like ldd.
        File.CreateSymbolicLink(Path.Combine(lib, "ld-linux-x86-64.so.2"), "ld.so");
        Files.WriteText(Path.Combine(dir, "init"), InitScript + "\n", Files.Exec755);
        Files.WriteText(Path.Combine(dir, "VERSION"), $"{Version}\n", Files.Public644);

        foreach (var (d, mode) in new[] { ("proc", Files.Exec755), ("sys", Files.Exec755), ("dev", Files.Exec755), ("run", Files.Exec755),
                     ("tmp", Files.Sticky1777), ("root", Files.Private700) })
            EnsureDirectory(root, d, mode);

        var etc = EnsureDirectory(root, "etc", Files.Exec755)
            ?? throw new SetupException("the image's /etc is not a directory (a symlink or a file); cannot write resolv.conf");
        WriteReplacing(Path.Combine(etc, "resolv.conf"), $"nameserver {GuestNetwork.Dns}\n");
        WriteReplacing(Path.Combine(etc, "hostname"), GuestNetwork.DefaultHostname + "\n");
        WriteReplacing(Path.Combine(etc, "hosts"),
            $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{GuestNetwork.DefaultHostname}\n");

        if (!string.IsNullOrEmpty(workingDir) && workingDir.StartsWith('/'))
            EnsureDirectory(root, workingDir.Trim('/'), Files.Exec755);
    }

    /// <summary>
    /// mkdir -p of <paramref name="relative"/> inside <paramref name="root"/>, stopping (null) at any
    /// component that is a symlink or a non-directory: those are the image's business, and following
    /// them at build time could write outside the root.
    /// </summary>
    internal static string? EnsureDirectory(string root, string relative, UnixFileMode mode)
    {
        var current = root;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part is "." or "..") return null;
            current = Path.Combine(current, part);
            var info = new FileInfo(current);
            if (info.LinkTarget != null) return null;
            if (Directory.Exists(current)) continue;
            if (info.Exists) return null;
            Directory.CreateDirectory(current);
            Files.SetMode(current, mode);
        }
        return current;
    }

    /// <summary>Replaces a file or a symlink (Debian's resolv.conf often is one) with a regular file.</summary>
    private static void WriteReplacing(string path, string content)
    {
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget == null) Directory.Delete(path, true);
        else if (File.Exists(path) || new FileInfo(path).LinkTarget != null) File.Delete(path);
        Files.WriteText(path, content, Files.Public644);
    }

    private static void RemoveAny(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget != null || info.Exists) File.Delete(path);
        else if (Directory.Exists(path)) Directory.Delete(path, true);
    }

    /// <summary>Copies a binary or library into the runtime as 0755 (executable and readable by every guest user).</summary>
    private static async Task CopyAsync(string from, string to, CancellationToken ct)
    {
        await using (var src = File.OpenRead(from)) // follows symlinks: the image gets the real file
        await using (var dst = File.Create(to))
            await src.CopyToAsync(dst, ct);
        Files.SetMode(to, Files.Exec755);
    }
}
