namespace Bough.Engine;

/// <summary>Settings of the sandbox engine. Defaults are what a single-machine install wants.</summary>
public sealed class EngineOptions
{
    /// <summary>Root of everything the daemon keeps on disk (catalog, kernel, images, sandboxes).</summary>
    public required string DataDir { get; set; }

    /// <summary>Requested acceleration: auto, kvm or tcg.</summary>
    public string Accel { get; set; } = "auto";

    public int DefaultVcpus { get; set; } = 1;
    public int DefaultMemoryMiB { get; set; } = 256;
    public int MaxVcpus { get; set; } = 16;
    public int MinMemoryMiB { get; set; } = 64;
    public int MaxMemoryMiB { get; set; } = 64 * 1024;
    public int MaxPortsPerSandbox { get; set; } = 32;

    /// <summary>
    /// How long a new sandbox may take from QEMU start to its agent answering. Generous because
    /// TCG boots slow down sharply when several run at once on few cores.
    /// </summary>
    public TimeSpan AgentTimeout { get; set; } = TimeSpan.FromSeconds(180);

    /// <summary>How long a stop waits for QEMU to quit before it is killed.</summary>
    public TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Stop every VM when the daemon shuts down gracefully (their rows become <c>stopped</c>).
    /// When false, VMs keep running and the next daemon adopts them (useful for upgrades).
    /// A crashed daemon never stops anything; the next one adopts what is alive.
    /// </summary>
    public bool StopSandboxesOnShutdown { get; set; } = true;

    /// <summary>Cap on what a buffered (non-streaming) exec collects per stream.</summary>
    public long MaxBufferedOutputBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Captures (snapshot, branch, pause) running at once across all sandboxes; more get 429.</summary>
    public int MaxConcurrentCaptures { get; set; } = 4;

    /// <summary>How long a lifecycle operation waits for another one on the same sandbox before answering 409.</summary>
    public TimeSpan BusyWait { get; set; } = TimeSpan.FromSeconds(5);

    public const int MaxBranchCount = 100;

    public string SnapshotsDir => Path.Combine(DataDir, "snapshots");
    public string CatalogPath => Path.Combine(DataDir, "bough.db");
    public string SandboxesDir => Path.Combine(DataDir, "sandboxes");
    /// <summary>Docker-style registry credentials (<c>{"auths": {...}}</c>), used when present.</summary>
    public string RegistryCredentialsPath => Path.Combine(DataDir, "registries.json");
}
