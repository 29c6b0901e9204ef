using Bough.HostSetup;

namespace Bough.Images.Rootfs;

/// <summary>
/// Lays out the base root filesystem in a directory: busybox as every tool, busybox init with a
/// sysinit script that mounts, names and networks the guest, the agent respawned by init, and the
/// host libraries the agent (a .NET single-file app) needs. The directory then becomes an ext4 image.
/// </summary>
public static class BaseRootfs
{
    /// <summary>Bump whenever anything written here changes, so base images are rebuilt.</summary>
    public const int RecipeVersion = 3;

    /// <summary>Hash of the scripts written into the image, so an edit rebuilds images even if nobody bumps <see cref="RecipeVersion"/>.</summary>
    public static string ScriptsHash() => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes(string.Join("\0", Inittab, RcS, AgentRunner))));

    public const string AgentGuestPath = "/usr/local/bin/bough-agent";
    public const string AgentRunnerGuestPath = "/usr/local/sbin/bough-agent-run";

    public static readonly string Inittab = $"""
        # Bough base image: busybox init.
        ::sysinit:/etc/init.d/rcS
        ::respawn:{AgentRunnerGuestPath}
        ::ctrlaltdel:/sbin/reboot
        ::shutdown:/bin/sync
        ::shutdown:/bin/umount -a -r
        ::shutdown:/bin/sync
        """;

    public static readonly string RcS = $$"""
        #!/bin/sh
        # Bough sysinit: mounts, hostname, static user-mode networking, then a marker on the console.
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        # busybox-static has no 'mountpoint' applet; /proc/mounts tells the same.
        mounted() { [ -r /proc/mounts ] && grep -q " $1 " /proc/mounts; }
        mounted /proc || mount -t proc proc /proc
        mounted /sys || mount -t sysfs sysfs /sys
        mounted /dev || mount -t devtmpfs devtmpfs /dev
        mkdir -p /dev/pts /dev/shm
        mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
        mounted /dev/shm || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
        mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
        mkdir -p /run/bough /var/lib/bough-agent
        chmod 1777 /tmp

        # Stable names for virtio-serial ports (what udev would do): /dev/virtio-ports/<name>.
        mkdir -p /dev/virtio-ports
        for p in /sys/class/virtio-ports/*; do
            [ -f "$p/name" ] || continue
            ln -sf "../$(basename "$p")" "/dev/virtio-ports/$(cat "$p/name")"
        done

        hostname -F /etc/hostname

        ip link set lo up
        if [ -e /sys/class/net/eth0 ]; then
            ip addr add {{GuestNetwork.Ip}}/24 dev eth0
            ip link set eth0 up
            ip route add default via {{GuestNetwork.Gateway}}
        else
            echo "bough: no eth0; networking is off"
        fi

        echo "{{GuestMarkers.InitDone}} uptime=$(cut -d' ' -f1 /proc/uptime)"
        """;

    /// <summary>
    /// Runs the agent under busybox init's respawn. The single-file app extracts nothing with
    /// trimming but still needs a writable bundle dir; the exit line makes crashes visible on the console.
    /// </summary>
    public static readonly string AgentRunner = $"""
        #!/bin/sh
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        export HOME=/root
        export DOTNET_BUNDLE_EXTRACT_BASE_DIR=/var/lib/bough-agent
        export DOTNET_CLI_TELEMETRY_OPTOUT=1
        mkdir -p "$DOTNET_BUNDLE_EXTRACT_BASE_DIR"
        {AgentGuestPath}
        echo "bough-agent exited with status $?; restarting"
        sleep 1
        """;

    /// <summary>Writes the whole tree into <paramref name="root"/> (which must be empty or absent).</summary>
    public static async Task WriteAsync(string root, string busyboxPath, string agentPath,
        IReadOnlyDictionary<string, string> hostLibraries, CancellationToken ct)
    {
        // Every mode is explicit (0755 unless said otherwise): the daemon's umask (077) must not reach the guest.
        Files.CreateGuestRoot(root);
        foreach (var d in new[] { "bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "etc/init.d",
                     "proc", "sys", "dev", "run", "mnt", "opt", "srv", "home", "var/log",
                     "var/lib/bough-agent", AgentLibraries.GuestLibDir, "lib64", "usr/lib" })
            Files.CreateDirectories(root, d);
        Files.CreateDirectories(root, "tmp", Files.Sticky1777);
        Files.CreateDirectories(root, "var/tmp", Files.Sticky1777);
        Files.CreateDirectories(root, "root", Files.Private700);

        File.Copy(busyboxPath, Path.Combine(root, "bin/busybox"));
        Files.SetMode(Path.Combine(root, "bin/busybox"), Files.Exec755);
        var list = await CommandRunner.RunCheckedAsync(busyboxPath, ["--list-full"], null, ct);
        foreach (var applet in list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var link = Path.Combine(root, applet);
            if (applet.Contains("..") || File.Exists(link) || Directory.Exists(link)) continue;
            Files.CreateDirectories(root, Path.GetDirectoryName(applet.TrimStart('/'))!);
            File.CreateSymbolicLink(link, "/bin/busybox");
        }
        if (!File.Exists(Path.Combine(root, "sbin/init")))
            File.CreateSymbolicLink(Path.Combine(root, "sbin/init"), "/bin/busybox");
        // The engine runs detached commands as `/.bough/bin/busybox sh -c ...` on every image; here
        // that is the base image's own busybox. No /.bough/init: the base boots busybox init.
        Files.CreateDirectories(root, ".bough/bin");
        File.CreateSymbolicLink(Path.Combine(root, ".bough/bin/busybox"), "/bin/busybox");

        foreach (var (name, hostPath) in hostLibraries)
        {
            var dest = name == "ld-linux-x86-64.so.2" ? Path.Combine(root, "lib64", name) : Path.Combine(root, AgentLibraries.GuestLibDir, name);
            File.Copy(hostPath, dest); // follows symlinks: the guest gets the real file under the soname
            Files.SetMode(dest, Files.Exec755);
        }

        File.Copy(agentPath, Path.Combine(root, AgentGuestPath.TrimStart('/')));
        Files.SetMode(Path.Combine(root, AgentGuestPath.TrimStart('/')), Files.Exec755);
        Files.WriteText(Path.Combine(root, AgentRunnerGuestPath.TrimStart('/')), AgentRunner + "\n", Files.Exec755);

        var etc = Path.Combine(root, "etc");
        Files.WriteText(Path.Combine(etc, "inittab"), Inittab + "\n");
        Files.WriteText(Path.Combine(etc, "init.d/rcS"), RcS + "\n", Files.Exec755);
        Files.WriteText(Path.Combine(etc, "hostname"), GuestNetwork.DefaultHostname + "\n");
        Files.WriteText(Path.Combine(etc, "hosts"), $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{GuestNetwork.DefaultHostname}\n");
        Files.WriteText(Path.Combine(etc, "resolv.conf"), $"nameserver {GuestNetwork.Dns}\n");
        Files.WriteText(Path.Combine(etc, "passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        Files.WriteText(Path.Combine(etc, "group"), "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
        Files.WriteText(Path.Combine(etc, "shadow"), "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
            UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Files.WriteText(Path.Combine(etc, "profile"), """
            export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            export HOME=${HOME:-/root}
            export PS1='\u@\h:\w\$ '
            umask 022
            """ + "\n");
        Files.WriteText(Path.Combine(etc, "shells"), "/bin/sh\n/bin/ash\n");
        Files.WriteText(Path.Combine(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
        Files.WriteText(Path.Combine(etc, "fstab"), "/dev/vda / ext4 rw,relatime 0 1\n");
        Files.WriteText(Path.Combine(etc, "os-release"), "NAME=\"Bough base\"\nID=bough\nPRETTY_NAME=\"Bough base (busybox)\"\n");
    }
}
