using Bough.HostSetup;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.Images.Rootfs;
using Bough.Images.Tests.Rootfs;

namespace Bough.Images.Tests.Publish;

/// <summary>Publishing, failure cleanup and the safety of the runtime injection, without booting.</summary>
public sealed class GuestImageBuilderTests
{
    private static GuestImageBuilder Builder(TempDir tmp) =>
        new(Path.Combine(tmp.Path, "data"), MinimalImageFixture.RequireAgent(), HostRequirements.BusyboxPath);

    private static string Root(GuestImageBuilder b)
    {
        var root = b.NewStagingDir();
        File.WriteAllText(Path.Combine(root, "file"), "x");
        return root;
    }

    [Fact]
    public async Task Publish_writes_a_readonly_qcow2_and_metadata_then_list_and_delete()
    {
        using var tmp = new TempDir();
        var b = Builder(tmp);
        var root = Root(b);
        Assert.StartsWith(b.StagingRoot, root);
        var progress = new List<SetupProgress>();
        var img = await b.PublishAsync("t", root, new OciImageConfig(["A=1"], "/w", "1000", null, ["x"]), "sha256:abc", null,
            new SyncProgress(progress.Add), CancellationToken.None);

        Assert.Matches("^img-[0-9a-f]{12}$", img.Id);
        Assert.Equal(Path.Combine(b.Root, img.Id), img.Dir);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(img.DiskPath)); // read-only, and the daemon's alone
        Assert.Equal(GuestImageBuilder.MinDiskBytes, img.DiskBytes);
        Assert.Contains("\"virtual-size\": " + img.DiskBytes, (await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", img.DiskPath])).Stdout);
        Assert.All(progress, p => Assert.Equal("image", p.Stage));
        Assert.NotEmpty(progress);
        Assert.False(Directory.Exists(root));
        Assert.Empty(Directory.EnumerateFileSystemEntries(b.StagingRoot));

        var again = b.TryGet(img.Id)!;
        Assert.Equal(img with { Config = again.Config }, again);
        Assert.Equal(["A=1"], again.Config.Env);
        Assert.Equal("/w", again.Config.WorkingDir);
        Assert.Equal([img.Id], b.ListPublishedIds());
        b.Delete(img.Id);
        Assert.Empty(b.ListPublishedIds());
        Assert.Null(b.TryGet(img.Id));
    }

    [Fact]
    public async Task Mkfs_failure_is_image_build_failed_with_stderr_and_leaves_nothing()
    {
        using var tmp = new TempDir();
        var b = Builder(tmp);
        var root = Root(b);
        File.WriteAllBytes(Path.Combine(root, "big"), new byte[8 << 20]);
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            b.PublishAsync("t", root, OciImageConfig.Empty, null, 4L << 20, null, CancellationToken.None));
        Assert.Equal("image_build_failed", e.Code);
        Assert.Contains("mkfs.ext4", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(b.StagingRoot));
        Assert.Empty(b.ListPublishedIds());
    }

    [Fact]
    public async Task Cancel_is_image_build_failed_and_leaves_nothing()
    {
        using var tmp = new TempDir();
        var b = Builder(tmp);
        var root = Root(b);
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            b.PublishAsync("t", root, OciImageConfig.Empty, null, null, null, new CancellationToken(true)));
        Assert.Equal("image_build_failed", e.Code);
        Assert.Contains("cancelled", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(b.StagingRoot));
        Assert.Empty(b.ListPublishedIds());

        b.NewStagingDir();
        b.CleanStaging();
        Assert.False(Directory.Exists(b.StagingRoot));
    }

    [Fact]
    public async Task Injection_never_writes_through_the_images_symlinks()
    {
        using var tmp = new TempDir();
        var outside = Directory.CreateDirectory(Path.Combine(tmp.Path, "outside")).FullName;
        var hostResolv = Path.Combine(outside, "resolv.conf");
        File.WriteAllText(hostResolv, "host\n");
        var root = Directory.CreateDirectory(Path.Combine(tmp.Path, "root")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.CreateSymbolicLink(Path.Combine(root, "etc/resolv.conf"), hostResolv);
        File.CreateSymbolicLink(Path.Combine(root, "app"), outside);
        File.CreateSymbolicLink(Path.Combine(root, ".bough"), outside);

        await GuestRuntime.InjectAsync(root, HostRequirements.BusyboxPath, MinimalImageFixture.RequireAgent(), "/app/sub", CancellationToken.None);

        Assert.Equal("host\n", File.ReadAllText(hostResolv));
        Assert.Null(new FileInfo(Path.Combine(root, "etc/resolv.conf")).LinkTarget);
        Assert.Equal($"nameserver {GuestNetwork.Dns}\n", File.ReadAllText(Path.Combine(root, "etc/resolv.conf")));
        Assert.False(Directory.Exists(Path.Combine(outside, "sub")));
        Assert.Equal(["resolv.conf"], Directory.EnumerateFileSystemEntries(outside).Select(Path.GetFileName));
        Assert.Null(new DirectoryInfo(Path.Combine(root, ".bough")).LinkTarget);
        Assert.Equal(GuestRuntime.LoaderPath, ElfInterpreter.Read(Path.Combine(root, ".bough/bin/bough-agent")));
        Assert.True(Elf.IsStatic(Path.Combine(root, ".bough/bin/busybox")));
        Assert.True(File.Exists(Path.Combine(root, ".bough/lib/ld.so")));
        Assert.True(File.Exists(Path.Combine(root, ".bough/lib/libc.so.6")));
        Assert.StartsWith("#!/.bough/bin/busybox sh\n", File.ReadAllText(Path.Combine(root, ".bough/init")));
    }

    [Fact]
    public void Default_size_rule_and_host_mirror_parsing()
    {
        Assert.Equal(1L << 30, GuestImageBuilder.DefaultDiskSize(100 << 20));
        Assert.Equal((3L << 30) + (512L << 20), GuestImageBuilder.DefaultDiskSize(2L << 30));

        using var tmp = new TempDir();
        Directory.CreateDirectory(Path.Combine(tmp.Path, "sources.list.d"));
        File.WriteAllText(Path.Combine(tmp.Path, "sources.list.d", "debian.sources"),
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n");
        Assert.Equal("http://mirror.example/debian", ImageRecipes.FindHostMirror(tmp.Path));
        File.WriteAllText(Path.Combine(tmp.Path, "sources.list"), "# c\ndeb [arch=amd64] http://one.example/debian bookworm main\n");
        Assert.Equal("http://one.example/debian", ImageRecipes.FindHostMirror(tmp.Path));
        Assert.Null(ImageRecipes.FindHostMirror(Path.Combine(tmp.Path, "none")));
    }

    private sealed class SyncProgress(Action<SetupProgress> report) : IProgress<SetupProgress>
    {
        public void Report(SetupProgress value) => report(value);
    }
}
