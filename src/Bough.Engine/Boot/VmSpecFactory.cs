using Bough.Catalog;
using Bough.Engine.Setup;
using Bough.Vmm;

namespace Bough.Engine.Boot;

/// <summary>The one place a sandbox record becomes a QEMU <see cref="VmSpec"/> (kernel, accel, shape, disk, network).</summary>
internal sealed class VmSpecFactory(PreparedHost host)
{
    public string Accel => host.Accel.Accel;
    public string AccelReason => host.Accel.Reason;

    public VmSpec For(SandboxRecord sandbox, string diskPath) => new()
    {
        Name = sandbox.Id,
        RuntimeDir = sandbox.RuntimeDir,
        KernelPath = host.Kernel.KernelPath,
        InitrdPath = host.Kernel.InitrdPath,
        KernelCmdline = host.Kernel.CommandLine,
        DiskPath = diskPath,
        Vcpus = sandbox.Vcpus,
        MemoryMiB = sandbox.MemoryMiB,
        Accel = host.Accel.Accel,
        Internet = sandbox.Internet,
        Ports = sandbox.Ports.Select(p => new PortForward(p.GuestPort, 0)).ToList(),
    };
}
