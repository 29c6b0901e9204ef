namespace Bough.Vmm;

/// <summary>A guest TCP port exposed on the host loopback interface through QEMU's user-mode network.</summary>
/// <param name="GuestPort">TCP port the guest listens on.</param>
/// <param name="HostPort">Port on 127.0.0.1; 0 asks the launcher to pick a free one (the resolved value is in <c>VmProcess.Ports</c>).</param>
public sealed record PortForward(int GuestPort, int HostPort);

/// <summary>
/// Everything needed to launch one microVM. The launcher does not create the disk: the caller
/// owns image/overlay management, the VMM only wires files into QEMU.
/// </summary>
public sealed record VmSpec
{
    /// <summary>Sandbox id; passed as QEMU <c>-name</c> so the process is identifiable in <c>ps</c>.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// Directory holding every runtime file of this VM (sockets, pidfile, console log, RAM file).
    /// Keeping them together lets a restarted daemon adopt or clean up a VM from this path alone.
    /// </summary>
    public required string RuntimeDir { get; init; }

    public required string KernelPath { get; init; }
    public required string InitrdPath { get; init; }
    public required string KernelCmdline { get; init; }

    /// <summary>qcow2 overlay, already created by the caller. Exposed to the guest as node <c>root</c>.</summary>
    public required string DiskPath { get; init; }

    public int Vcpus { get; init; } = 1;
    public int MemoryMiB { get; init; } = 256;

    /// <summary><c>kvm</c> or <c>tcg</c>. Chosen by the caller (probe + fallback), never assumed here.</summary>
    public required string Accel { get; init; }

    /// <summary>
    /// File that backs guest RAM, mapped private (<c>share=off</c>) so the file itself never changes.
    /// Null means <c>RuntimeDir/memory</c>, created sparse and zero-filled. A caller-provided file
    /// (e.g. a snapshot) must already exist and be at least <see cref="MemoryMiB"/> large.
    /// </summary>
    public string? MemoryFile { get; init; }

    /// <summary>False adds <c>restrict=on</c> to the user-mode network: no outbound traffic, port forwards still work.</summary>
    public bool Internet { get; init; } = true;

    public IReadOnlyList<PortForward> Ports { get; init; } = [];

    /// <summary>TCG translation cache cap; bounds per-VM RSS. Ignored for KVM.</summary>
    public int TcgTranslationCacheMiB { get; init; } = 64;

    /// <summary>Extra QEMU arguments appended verbatim (e.g. <c>-incoming defer</c> for restores).</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    /// <summary>
    /// Who QEMU runs as and what it may use. Null runs it as the daemon's user without a cgroup (the VMM's own
    /// tests); the engine always sets it. QEMU runs under its seccomp filter either way.
    /// </summary>
    public VmConfinement? Confinement { get; init; }

    /// <summary>
    /// <c>console.log</c> is kept to its last this many bytes while the VM is attached (a guest can print without
    /// end); 0 leaves it unbounded.
    /// </summary>
    public long ConsoleLogMaxBytes { get; init; } = DefaultConsoleLogMaxBytes;

    /// <summary>
    /// Start QEMU with the write-tracking library and arm <see cref="VmProcess.WriteTracker"/>, so a capture copies only
    /// the pages written since the previous one. False starts QEMU as before: every capture scans each page QEMU holds.
    /// </summary>
    public bool TrackWrites { get; init; } = true;

    /// <summary>8 MiB.</summary>
    public const long DefaultConsoleLogMaxBytes = 8L << 20;
}
