namespace Bough.Vmm;

/// <summary>QEMU could not be started. <see cref="QemuStderr"/> holds QEMU's own explanation.</summary>
public sealed class VmStartException : Exception
{
    public VmStartException(string message, string? qemuStderr = null, int? exitCode = null, Exception? inner = null)
        : base(message, inner)
    {
        QemuStderr = qemuStderr;
        ExitCode = exitCode;
    }

    public string? QemuStderr { get; }
    public int? ExitCode { get; }
}
