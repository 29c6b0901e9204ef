namespace Bough.Images.Kernel;

/// <summary>
/// A guest kernel ready to boot: the bzImage, the initramfs that loads its virtio modules and
/// switches to the root disk, the kernel version and the command line QEMU must pass with <c>-append</c>.
/// </summary>
public sealed record GuestKernel(string KernelPath, string InitrdPath, string Version, string CommandLine);
