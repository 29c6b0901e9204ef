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

    /// <summary>How long a VM started from a snapshot may take until its agent answers (no boot, but TCG re-translation).</summary>
    public TimeSpan RestoreAgentTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a reconnect to a live VM's agent may take (the agent respawns within a second or two).</summary>
    public TimeSpan AgentReconnectTimeout { get; set; } = TimeSpan.FromSeconds(15);

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

    /// <summary>Checks the settings once at start-up, so a bad value fails there and not mid-request.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"engine option {what}");
        }
        Require(!string.IsNullOrWhiteSpace(DataDir), "DataDir must be set");
        Require(Accel is "auto" or "kvm" or "tcg", $"Accel must be auto, kvm or tcg (got '{Accel}')");
        Require(DefaultVcpus >= 1 && DefaultVcpus <= MaxVcpus, $"DefaultVcpus must be between 1 and MaxVcpus ({MaxVcpus})");
        Require(MinMemoryMiB >= 16 && MinMemoryMiB <= DefaultMemoryMiB && DefaultMemoryMiB <= MaxMemoryMiB,
            "memory limits must satisfy 16 <= MinMemoryMiB <= DefaultMemoryMiB <= MaxMemoryMiB");
        Require(MaxPortsPerSandbox >= 0, "MaxPortsPerSandbox must not be negative");
        Require(MaxConcurrentCaptures >= 1, "MaxConcurrentCaptures must be at least 1");
        Require(MaxBufferedOutputBytes >= 1024, "MaxBufferedOutputBytes must be at least 1 KiB");
        foreach (var (name, value) in new[] { ("AgentTimeout", AgentTimeout), ("RestoreAgentTimeout", RestoreAgentTimeout),
                     ("AgentReconnectTimeout", AgentReconnectTimeout), ("StopGrace", StopGrace), ("BusyWait", BusyWait) })
            Require(value > TimeSpan.Zero, $"{name} must be positive");
    }

    /// <summary>The only directory <c>POST /v1/images/import</c> reads from (default <c>&lt;data dir&gt;/import</c>, created 0700).</summary>
    public string ImportDir
    {
        get => _importDir ?? Path.Combine(DataDir, "import");
        set => _importDir = value;
    }

    private string? _importDir;

    /// <summary>Caps on registry documents, layers and images (sizes, entries).</summary>
    public Bough.Images.ImageLimits ImageLimits { get; set; } = new();

    public string SnapshotsDir => Path.Combine(DataDir, "snapshots");
    public string CatalogPath => Path.Combine(DataDir, "bough.db");
    public string SandboxesDir => Path.Combine(DataDir, "sandboxes");
    /// <summary>Docker-style registry credentials (<c>{"auths": {...}}</c>), used when present.</summary>
    public string RegistryCredentialsPath => Path.Combine(DataDir, "registries.json");
}
