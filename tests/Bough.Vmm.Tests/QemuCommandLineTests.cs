namespace Bough.Vmm.Tests;

public sealed class QemuCommandLineTests
{
    private static VmSpec Spec(string dir) => new()
    {
        Name = "sb,1",
        RuntimeDir = dir,
        KernelPath = "/k/vmlinuz",
        InitrdPath = "/k/initrd",
        KernelCmdline = "console=ttyS0 quiet",
        DiskPath = dir + "/disk.qcow2",
        Accel = "tcg",
        Vcpus = 2,
        MemoryMiB = 512,
        Internet = false,
        TcgTranslationCacheMiB = 32,
    };

    private static string After(IReadOnlyList<string> argv, string flag, int nth = 0) =>
        argv.Select((a, i) => (a, i)).Where(x => x.a == flag).Skip(nth).Select(x => argv[x.i + 1]).First();

    [Fact]
    public void Build_ProducesMicrovmArgv()
    {
        var layout = new RuntimeDirLayout("/run/b/sb1");
        var argv = QemuCommandLine.Build(Spec("/run/b/sb1"), layout, "/run/b/sb1/memory",
            [new PortForward(80, 40000), new PortForward(22, 40001)]);

        Assert.Equal("microvm", After(argv, "-M"));
        Assert.Equal("tcg,tb-size=32", After(argv, "-accel"));
        Assert.Equal("max", After(argv, "-cpu"));
        Assert.Equal("512", After(argv, "-m"));
        Assert.Equal("2", After(argv, "-smp"));
        Assert.Equal("sb,,1", After(argv, "-name")); // commas escaped
        Assert.Equal("memory-backend-file,id=mem,size=512M,mem-path=/run/b/sb1/memory,share=off", After(argv, "-object"));
        Assert.Equal("memory-backend=mem", After(argv, "-machine"));
        Assert.Equal("user,id=n0,ipv6=off,restrict=on,hostfwd=tcp:127.0.0.1:40000-:80,hostfwd=tcp:127.0.0.1:40001-:22", After(argv, "-netdev"));
        // The disk comes as descriptors 3 (read-write) and 4 (read-only) from the launcher, in fd set 1.
        Assert.Equal("driver=qcow2,node-name=root,file.driver=file,file.filename=/dev/fdset/1", After(argv, "-blockdev"));
        Assert.Equal("fd=3,set=1,opaque=rw:/run/b/sb1/disk.qcow2", After(argv, "-add-fd"));
        Assert.Equal("fd=4,set=1,opaque=ro:/run/b/sb1/disk.qcow2", After(argv, "-add-fd", 1));
        Assert.Contains("socket,id=qmp,path=/run/b/sb1/qmp.sock,server=on,wait=off", argv);
        Assert.Contains("socket,id=agent,path=/run/b/sb1/agent.sock,server=on,wait=off", argv);
        Assert.Contains("virtserialport,chardev=agent,id=agent0,name=org.bough.agent", argv);
        Assert.DoesNotContain("-daemonize", argv); // the seccomp filter kills daemonize's fork
        Assert.Equal("file,id=console,path=/run/b/sb1/console.log,append=on", After(argv, "-chardev"));
        Assert.Equal("/run/b/sb1/qemu.pid", After(argv, "-pidfile"));
        Assert.Equal("on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny", After(argv, "-sandbox"));
        Assert.DoesNotContain("-runas", argv);
        foreach (string flag in new[] { "-no-reboot", "-nodefaults", "-no-user-config" }) Assert.Contains(flag, argv);

        Assert.Equal([new PortForward(80, 40000), new PortForward(22, 40001)], QemuCommandLine.ParsePortForwards(argv));
    }

    [Fact]
    public void Build_Confined_RunsAsItsUidAndGid()
    {
        var spec = Spec("/r") with { Confinement = new VmConfinement(1_900_000_007, 990) };
        var argv = QemuCommandLine.Build(spec, new RuntimeDirLayout("/r"), "/r/memory", []);
        Assert.Equal("1900000007:990", After(argv, "-runas"));
    }

    [Fact]
    public void Build_Kvm_UsesHostCpu_AndNoRestrictWhenInternet()
    {
        var argv = QemuCommandLine.Build(Spec("/r") with { Accel = "kvm", Internet = true }, new RuntimeDirLayout("/r"), "/r/memory", []);
        Assert.Equal("kvm", After(argv, "-accel"));
        Assert.Equal("host", After(argv, "-cpu"));
        Assert.Equal("user,id=n0,ipv6=off", After(argv, "-netdev"));
    }

    [Fact]
    public void ShellString_QuotesWhatNeedsIt()
    {
        Assert.Equal("qemu -append 'console=ttyS0 quiet' -name 'it'\\''s'",
            QemuCommandLine.ToShellString("qemu", ["-append", "console=ttyS0 quiet", "-name", "it's"]));
    }

    [Fact]
    public void Layout_RejectsLongSocketPaths()
    {
        new RuntimeDirLayout("/tmp/short").ValidateSocketPaths();
        var ex = Assert.Throws<ArgumentException>(() => new RuntimeDirLayout("/tmp/" + new string('a', 100)).ValidateSocketPaths());
        Assert.Contains("qmp.sock", ex.Message);
    }

    [Fact]
    public void ReferencesDirectory_IsAnchoredOnSeparator()
    {
        string[] argv = ["qemu-system-x86_64", "-chardev", "socket,id=qmp,path=/x/vm10/qmp.sock"];
        Assert.True(ProcFs.ReferencesDirectory(argv, "/x/vm10"));
        Assert.True(ProcFs.ReferencesDirectory(argv, "/x/"));
        Assert.False(ProcFs.ReferencesDirectory(argv, "/x/vm1"));
    }
}
