using System.Text.Json;

namespace Bough.Vmm.Tests;

/// <summary>The jail's parts without a VM: cgroup layout (over a directory tree standing in for /sys/fs/cgroup), console trimming, fd set names.</summary>
public sealed class JailPartsTests : IDisposable
{
    private readonly TempDir _dir = new("jp");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void CgroupV1_MadeUnderOwnCgroupPerController_WithLimits_ThenStaleOnesRemoved()
    {
        string root = Path.Combine(_dir.Path, "cg");
        foreach (string c in new[] { "memory", "cpu", "pids" })
        {
            Directory.CreateDirectory(Path.Combine(root, c, "svc"));
            File.WriteAllText(Path.Combine(root, c, "cgroup.procs"), "");
        }
        var tree = CgroupTree.Detect(root, "4:memory:/svc\n1:cpu,cpuacct:/svc\n8:pids:/svc\n0::/\n");
        Assert.Equal(CgroupVersion.V1, tree.Version);

        var cg = tree.Create("bough", "sb-1", new CgroupLimits(300L << 20, 2, 64));
        Assert.Equal([$"{root}/memory/svc/bough/sb-1", $"{root}/cpu/svc/bough/sb-1", $"{root}/pids/svc/bough/sb-1"], cg.Directories);
        Assert.Equal((300L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            File.ReadAllText(Path.Combine(cg.Directories[0], "memory.limit_in_bytes")));
        Assert.Equal("200000", File.ReadAllText(Path.Combine(cg.Directories[1], "cpu.cfs_quota_us")));
        Assert.Equal("100000", File.ReadAllText(Path.Combine(cg.Directories[1], "cpu.cfs_period_us")));
        Assert.Equal("64", File.ReadAllText(Path.Combine(cg.Directories[2], "pids.max")));
        Assert.Equal(cg.Directories.Select(d => d + "/cgroup.procs"), cg.ProcsFiles);
        Assert.Throws<ArgumentException>(() => tree.Create("bough", "../escape", new CgroupLimits(1, 1, 16)));

        // A real cgroup directory has only kernel files, which rmdir ignores; this stand-in must be emptied first.
        foreach (string d in cg.Directories) foreach (string f in Directory.GetFiles(d)) File.Delete(f);
        Directory.CreateDirectory($"{root}/memory/svc/bough/sb-live");
        Assert.Empty(tree.RemoveStale("bough", new HashSet<string> { "sb-live" }));
        Assert.All(cg.Directories, d => Assert.False(Directory.Exists(d)));
        Assert.True(Directory.Exists($"{root}/memory/svc/bough/sb-live"));
        // With nothing left to keep (a graceful shutdown), the parent goes too.
        Assert.Empty(tree.RemoveStale("bough", new HashSet<string>()));
        Assert.False(Directory.Exists($"{root}/memory/svc/bough"));
    }

    [Fact]
    public void CgroupV2_EnablesControllers_AndWritesV2Limits()
    {
        string root = Path.Combine(_dir.Path, "v2");
        Directory.CreateDirectory(Path.Combine(root, "system.slice", "bough.service"));
        File.WriteAllText(Path.Combine(root, "cgroup.controllers"), "cpu memory pids");
        var tree = CgroupTree.Detect(root, "0::/system.slice/bough.service\n");
        Assert.Equal(CgroupVersion.V2, tree.Version);

        var cg = tree.Create("bough", "sb-2", new CgroupLimits(512L << 20, 1, 256));
        string dir = Assert.Single(cg.Directories);
        Assert.Equal($"{root}/system.slice/bough.service/bough/sb-2", dir);
        Assert.Equal("+memory +cpu +pids", File.ReadAllText($"{root}/system.slice/bough.service/cgroup.subtree_control"));
        Assert.Equal("+memory +cpu +pids", File.ReadAllText($"{root}/system.slice/bough.service/bough/cgroup.subtree_control"));
        Assert.Equal("100000 100000", File.ReadAllText(Path.Combine(dir, "cpu.max")));
        Assert.Equal("256", File.ReadAllText(Path.Combine(dir, "pids.max")));
        Assert.Contains("v2", tree.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void NoCgroups_DetectedAsNone_AndCreateSaysWhy()
    {
        var tree = CgroupTree.Detect(Path.Combine(_dir.Path, "nothing"), "");
        Assert.Equal(CgroupVersion.None, tree.Version);
        Assert.Throws<IOException>(() => tree.Create("bough", "sb", new CgroupLimits(1 << 30, 1, 64)));
    }

    [Fact]
    public void ConsoleTrim_KeepsTheNewestTail_OnlyWhenOverTheCap()
    {
        string log = Path.Combine(_dir.Path, "console.log");
        // Lines numbered so the kept part can be checked for being the newest, in order.
        using (var w = new StreamWriter(log))
            for (int i = 0; i < 100_000; i++) w.Write($"line {i:D7}\n"); // 13 bytes each, 1.3 MB
        long before = new FileInfo(log).Length;
        Assert.Equal(0, ConsoleLogTrimmer.Trim(log, before, before / 2));

        long cut = ConsoleLogTrimmer.Trim(log, 512 * 1024, 448 * 1024);
        long after = new FileInfo(log).Length;
        Assert.Equal(before - cut, after);
        Assert.InRange(after, 448 * 1024, 448 * 1024 + 4096);
        string text = File.ReadAllText(log);
        Assert.EndsWith("line 0099999\n", text, StringComparison.Ordinal);
        string firstWhole = text.Split('\n')[1];
        int first = int.Parse(firstWhole["line ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(100_000 - first, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1);
        Assert.Equal(0, ConsoleLogTrimmer.Trim(Path.Combine(_dir.Path, "missing.log"), 65536, 4096));
    }

    [Fact]
    public void FdSetPaths_ResolveToTheOpaquePath_OthersUnchanged()
    {
        using var doc = JsonDocument.Parse("""
            [{"fds":[{"fd":19,"opaque":"rw:/data/sandboxes/a/disk-2.qcow2"},{"fd":20,"opaque":"ro:/data/sandboxes/a/disk-2.qcow2"}],"fdset-id":1},
             {"fds":[{"fd":20,"opaque":"relative"}],"fdset-id":2}, {"fds":[{"fd":21}],"fdset-id":3}]
            """);
        var map = FdSets.ParseOpaques(doc.RootElement);
        Assert.Equal("/data/sandboxes/a/disk-2.qcow2", FdSets.Resolve("/dev/fdset/1", map));
        Assert.Equal("/dev/fdset/2", FdSets.Resolve("/dev/fdset/2", map)); // not an absolute path: not trusted
        Assert.Equal("/dev/fdset/3", FdSets.Resolve("/dev/fdset/3", map));
        Assert.Equal("/x/disk.qcow2", FdSets.Resolve("/x/disk.qcow2", map));
        Assert.Null(FdSets.Resolve(null, map));
    }

    [Fact]
    public void LaunchScript_PassesEverythingAsPositionalParameters()
    {
        var argv = QemuLaunchScript.Arguments("/r/qemu.log", ["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], "/r/disk.qcow2",
            "/r/uffd-preload.so", "qemu-system-x86_64", ["-name", "x'; rm -rf /"]);
        Assert.Equal("-c", argv[0]);
        Assert.Equal(["bough-launch", "/r/qemu.log", "2", "/cg/a/cgroup.procs", "/cg/b/cgroup.procs", "/r/disk.qcow2",
            "/r/uffd-preload.so", "qemu-system-x86_64", "-name", "x'; rm -rf /"], argv.Skip(2));
        Assert.DoesNotContain("qemu.log", argv[1], StringComparison.Ordinal);
        Assert.DoesNotContain("uffd-preload", argv[1], StringComparison.Ordinal);
        // No library: an empty parameter, and LD_PRELOAD is left alone.
        Assert.Equal("", QemuLaunchScript.Arguments("/r/qemu.log", [], "/r/disk.qcow2", null, "qemu", [])[6]);
    }
}
