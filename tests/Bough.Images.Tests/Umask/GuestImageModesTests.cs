using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.Images.Rootfs;
using Bough.Images.Tests.Rootfs;
using Bough.TestSupport.Registry;
using static Bough.Images.Tests.Umask.TreeModes;

namespace Bough.Images.Tests.Umask;

/// <summary>
/// The daemon runs with umask 077 (<see cref="ProcessUmask.Daemon"/>). What it builds for guests must not notice:
/// a real OCI layer (with parents it only implies) flattened and published with the guest runtime, the base root
/// tree and the initramfs are built once under 022 and once under 077, and every entry's mode, read back from the
/// ext4 inside the qcow2 and from the cpio, must be the same, and what it should be.
/// </summary>
[Collection(UmaskIsolation.Collection)]
public sealed class GuestImageModesTests : IDisposable
{
    private const UnixFileMode Mode755 = (UnixFileMode)0b111_101_101;
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static IReadOnlyList<TarItem> Layer() =>
    [
        TarItem.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), // /etc only implied
        TarItem.File("usr/local/lib/app/data.txt", "data\n", (UnixFileMode)0b110_100_000),                // 0640, four implied levels
        TarItem.File("usr/bin/tool", "#!/bin/sh\n", Mode755),
        TarItem.File("usr/bin/su", "#!/bin/sh\n", (UnixFileMode)0b100_111_101_101),                       // 4755
        TarItem.Symlink("usr/bin/sh", "tool"),
        TarItem.HardLink("usr/bin/tool2", "usr/bin/tool"),
        TarItem.Dir("opt/private", (UnixFileMode)0b111_101_000),                                           // 0750 listed, /opt implied
        TarItem.File("opt/private/secret", "s\n", (UnixFileMode)0b110_000_000),
        TarItem.Dir("tmp", Files.Sticky1777),
    ];

    private async Task<GuestImage> PublishUnderAsync(UnixFileMode umask, string name)
    {
        var layer = Path.Combine(_tmp.Path, name + ".tar.gz");
        await File.WriteAllBytesAsync(layer, TarBuilder.Layer(Layer(), LayerCompression.Gzip));
        var blob = new LayerBlob("sha256:" + new string('7', 64), OciLayoutBuilder.LayerMediaType(LayerCompression.Gzip), new FileInfo(layer).Length, layer);
        using var _ = new UmaskScope(umask);
        var builder = new GuestImageBuilder(Path.Combine(_tmp.Path, name), MinimalImageFixture.RequireAgent(), HostRequirements.BusyboxPath);
        var root = builder.NewStagingDir();
        await LayerFlattener.ApplyAsync(blob, root, CancellationToken.None);
        var config = new OciImageConfig(["PATH=/usr/bin"], "/srv/app", null, null, ["/usr/bin/tool"]);
        return await builder.PublishAsync(name, root, config, null, null, null, CancellationToken.None);
    }

    private static void AssertSame(SortedDictionary<string, string> under022, SortedDictionary<string, string> under077)
    {
        var diff = under022.Keys.Union(under077.Keys)
            .Where(k => under022.GetValueOrDefault(k) != under077.GetValueOrDefault(k))
            .Select(k => $"{k}: {under022.GetValueOrDefault(k) ?? "absent"} under 022, {under077.GetValueOrDefault(k) ?? "absent"} under 077")
            .ToList();
        Assert.Empty(diff);
    }

    [Fact]
    public async Task An_oci_image_published_under_umask_077_has_the_modes_it_has_under_022()
    {
        var shared = await OfDiskAsync((await PublishUnderAsync(ProcessUmask.Shared, "u022")).DiskPath, _tmp.Path);
        var strict = await OfDiskAsync((await PublishUnderAsync(ProcessUmask.Daemon, "u077")).DiskPath, _tmp.Path);

        AssertSame(shared, strict);
        var expected = new Dictionary<string, string>
        {
            ["/"] = Dir(Mode755),
            ["/etc"] = Dir(Mode755),                       // implied by the layer
            ["/etc/passwd"] = Reg(Files.Public644),
            ["/usr/local/lib/app"] = Dir(Mode755),
            ["/usr/local/lib/app/data.txt"] = Reg((UnixFileMode)0b110_100_000),
            ["/usr/bin/tool"] = Reg(Mode755),
            ["/usr/bin/tool2"] = Reg(Mode755),
            ["/usr/bin/su"] = Reg((UnixFileMode)0b100_111_101_101),
            ["/usr/bin/sh"] = "link",
            ["/opt"] = Dir(Mode755),
            ["/opt/private"] = Dir((UnixFileMode)0b111_101_000),
            ["/opt/private/secret"] = Reg((UnixFileMode)0b110_000_000),
            ["/tmp"] = Dir(Files.Sticky1777),
            ["/.bough"] = Dir(Mode755),                    // the guest runtime
            ["/.bough/bin"] = Dir(Mode755),
            ["/.bough/lib"] = Dir(Mode755),
            ["/.bough/bin/bough-agent"] = Reg(Mode755),
            ["/.bough/bin/busybox"] = Reg(Mode755),
            ["/.bough/lib/ld.so"] = Reg(Mode755),
            ["/.bough/lib/libc.so.6"] = Reg(Mode755),
            ["/.bough/init"] = Reg(Mode755),
            ["/.bough/VERSION"] = Reg(Files.Public644),
            ["/etc/resolv.conf"] = Reg(Files.Public644),
            ["/etc/hosts"] = Reg(Files.Public644),
            ["/etc/hostname"] = Reg(Files.Public644),
            ["/srv"] = Dir(Mode755),                       // the WorkingDir and its parent
            ["/srv/app"] = Dir(Mode755),
            ["/proc"] = Dir(Mode755),
            ["/root"] = Dir(Files.Private700),
        };
        foreach (var (path, mode) in expected)
            Assert.True(strict.GetValueOrDefault(path) == mode, $"{path}: {strict.GetValueOrDefault(path) ?? "absent"}, expected {mode}");
    }

    [Fact]
    public async Task A_layer_flattened_under_umask_077_into_a_new_root_gives_the_root_and_implied_parents_0755()
    {
        var layer = Path.Combine(_tmp.Path, "layer.tar");
        await File.WriteAllBytesAsync(layer, TarBuilder.Layer([TarItem.File("a/b/c/file", "x\n")], LayerCompression.None));
        var root = Path.Combine(_tmp.Path, "fresh", "root");
        using (new UmaskScope(ProcessUmask.Daemon))
            await LayerFlattener.ApplyAsync(new LayerBlob("sha256:" + new string('8', 64), OciLayoutBuilder.LayerMediaType(LayerCompression.None),
                new FileInfo(layer).Length, layer), root, CancellationToken.None);

        var modes = OfDirectory(root);
        Assert.Equal(Dir(Mode755), modes["/"]);
        Assert.Equal(Dir(Mode755), modes["/a"]);
        Assert.Equal(Dir(Mode755), modes["/a/b/c"]);
        Assert.Equal(Reg(Files.Public644), modes["/a/b/c/file"]);
    }

    [Fact]
    public async Task The_base_root_and_the_initramfs_built_under_umask_077_have_the_modes_they_have_under_022()
    {
        var kernel = await new KernelProvider(GuestFixture.CacheDataDir).EnsureAsync(null, CancellationToken.None);
        var modules = Path.Combine(Path.GetDirectoryName(kernel.KernelPath)!, "modules");
        var agent = MinimalImageFixture.RequireAgent();

        async Task<(SortedDictionary<string, string> Root, SortedDictionary<string, string> Initrd)> BuildUnderAsync(UnixFileMode umask, string name)
        {
            var work = Directory.CreateDirectory(Path.Combine(_tmp.Path, name)).FullName;
            var root = Path.Combine(work, "rootfs");
            var initrd = Path.Combine(work, "initrd.img");
            using (new UmaskScope(umask))
            {
                await BaseRootfs.WriteAsync(root, HostRequirements.BusyboxPath, agent, AgentLibraries.FindOnHost(), CancellationToken.None);
                await Initramfs.BuildAsync(HostRequirements.BusyboxPath, modules, initrd, work, CancellationToken.None);
            }
            return (OfDirectory(root), await OfInitramfsAsync(initrd, work));
        }

        var shared = await BuildUnderAsync(ProcessUmask.Shared, "u022");
        var strict = await BuildUnderAsync(ProcessUmask.Daemon, "u077");

        AssertSame(shared.Root, strict.Root);
        AssertSame(shared.Initrd, strict.Initrd);
        Assert.Equal(Dir(Mode755), strict.Root["/"]);
        Assert.Equal(Dir(Mode755), strict.Root["/usr/local/sbin"]);
        Assert.Equal(Dir(Mode755), strict.Root["/" + AgentLibraries.GuestLibDir]);
        Assert.Equal(Dir(Mode755), strict.Root["/.bough/bin"]);
        Assert.Equal(Dir(Files.Sticky1777), strict.Root["/tmp"]);
        Assert.Equal(Dir(Files.Sticky1777), strict.Root["/var/tmp"]);
        Assert.Equal(Dir(Files.Private700), strict.Root["/root"]);
        Assert.Equal(Reg(Files.Public644), strict.Root["/etc/passwd"]);
        Assert.Equal(Reg(Files.Public644), strict.Root["/etc/inittab"]);
        Assert.Equal(Reg((UnixFileMode)0b110_000_000), strict.Root["/etc/shadow"]);
        Assert.Equal(Reg(Mode755), strict.Root["/etc/init.d/rcS"]);
        Assert.Equal(Reg(Mode755), strict.Root[BaseRootfs.AgentGuestPath]);
        Assert.Equal(Reg(Mode755), strict.Root["/bin/busybox"]);

        Assert.Equal("drwxr-xr-x", strict.Initrd["."]);
        Assert.Equal("drwxr-xr-x", strict.Initrd["bin"]);
        Assert.Equal("drwxr-xr-x", strict.Initrd["lib/modules"]);
        Assert.Equal("-rwxr-xr-x", strict.Initrd["init"]);
        Assert.Equal("-rwxr-xr-x", strict.Initrd["bin/busybox"]);
        Assert.Equal("-rw-r--r--", strict.Initrd["lib/modules/virtio.ko"]);
    }

    [Fact]
    public async Task What_the_daemon_keeps_in_its_data_dir_under_umask_077_is_owner_only()
    {
        var data = Path.Combine(_tmp.Path, "data");
        using (new UmaskScope(ProcessUmask.Daemon))
        {
            DataDirectory.EnsurePrivate(data);
            await new BlobStore(data).AddBytesAsync("a cached blob"u8.ToArray(), CancellationToken.None);
            var builder = new GuestImageBuilder(data, MinimalImageFixture.RequireAgent(), HostRequirements.BusyboxPath);
            var root = builder.NewStagingDir();
            await File.WriteAllTextAsync(Path.Combine(root, "file"), "x");
            var image = await builder.PublishAsync("owner-only", root, new OciImageConfig([], null, null, null, ["/file"]), null, null, null,
                CancellationToken.None);
            Assert.Equal(Reg(UnixFileMode.UserRead), OfDirectory(image.Dir)["/" + GuestImageBuilder.DiskFile]); // read-only, and the daemon's
        }

        var modes = OfDirectory(data);
        Assert.Contains(modes.Keys, k => k.StartsWith("/blobs/sha256/", StringComparison.Ordinal));
        Assert.Contains(modes.Keys, k => k.EndsWith("/" + GuestImageBuilder.MetadataFile, StringComparison.Ordinal));
        var open = modes.Where(m => m.Value != "link" && (Convert.ToInt32(m.Value[1..], 8) & 0b111_111) != 0).Select(m => $"{m.Key} {m.Value}");
        Assert.Empty(open);
    }
}
