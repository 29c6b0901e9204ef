namespace Bough.TestSupport.Registry;

/// <summary>Small real images for tests: the host's static busybox (busybox-static) as a one-layer root.</summary>
public static class TestImages
{
    public const string HostBusybox = "/bin/busybox";

    public static IReadOnlyList<TarItem> BusyboxLayer() =>
    [
        TarItem.Dir("bin"),
        TarItem.File("bin/busybox", File.ReadAllBytes(HostBusybox), (UnixFileMode)0b111_101_101),
        TarItem.Symlink("bin/sh", "busybox"),
        TarItem.Symlink("bin/ls", "busybox"),
        TarItem.Symlink("bin/cat", "busybox"),
        TarItem.Dir("etc"),
        TarItem.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
        TarItem.File("etc/group", "root:x:0:\napp:x:1000:\n"),
        TarItem.Dir("tmp", (UnixFileMode)0b1_111_111_111),
        TarItem.Dir("root", (UnixFileMode)0b111_000_000),
        TarItem.Dir("home"),
        TarItem.Dir("home/app", (UnixFileMode)0b111_101_101, 1000, 1000),
    ];

    /// <summary>A busybox image with exec defaults set, as a registry test expects to read them back.</summary>
    public static ImageSpec Busybox(params LayerSpec[] extraLayers) =>
        new([new LayerSpec(BusyboxLayer(), LayerCompression.Gzip), .. extraLayers])
        {
            Env = ["PATH=/bin", "GREETING=hello world"],
            WorkingDir = "/home/app",
            User = "app",
            Cmd = ["/bin/sh", "-c", "echo hi"],
        };
}
