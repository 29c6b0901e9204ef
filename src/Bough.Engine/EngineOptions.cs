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

    /// <summary>Cap on what a buffered (non-streaming) exec collects per stream; streamed execs have none.</summary>
    public long MaxBufferedOutputBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Cap on the JSON a buffered exec's answer may become (stdout and stderr together): bytes that
    /// JSON must escape (control characters, non-ASCII, invalid UTF-8) take up to six characters
    /// each. A buffered exec holds about four times this at its peak (text, string, JSON), so this
    /// times <see cref="MaxBufferedExecs"/> bounds what buffered execs can cost the daemon.
    /// </summary>
    public long MaxBufferedJsonBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Timeout of a buffered exec that does not name one (null: none). Streamed execs have no default.</summary>
    public TimeSpan? DefaultExecTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Buffered execs running at once in one sandbox; more wait <see cref="ExecSlotWait"/>, then 429.</summary>
    public int MaxBufferedExecsPerSandbox { get; set; } = 16;

    /// <summary>Buffered execs running at once across the daemon; more wait <see cref="ExecSlotWait"/>, then 429.</summary>
    public int MaxBufferedExecs { get; set; } = 32;

    /// <summary>How long a buffered exec waits for a free slot (a burst queues briefly) before answering 429 too_many_execs.</summary>
    public TimeSpan ExecSlotWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Entries one file listing may have; a bigger directory is 413 (list a subdirectory, or use exec).</summary>
    public int MaxListEntries { get; set; } = 100_000;

    /// <summary>Bytes of names (plus a fixed cost per entry) one file listing may hold.</summary>
    public long MaxListBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Lifetime of a sandbox whose create does not name one (null: no deadline).</summary>
    public TimeSpan? DefaultTimeout { get; set; }

    /// <summary>The longest lifetime a request may ask for (null: no limit).</summary>
    public TimeSpan? MaxTimeout { get; set; }

    /// <summary>Share of the host's RAM that running sandboxes' guest memory may add up to; past it creates, branches and resumes get 503.</summary>
    public double MaxMemoryShare { get; set; } = 0.9;

    /// <summary>The host RAM admission counts against (null: MemTotal from /proc/meminfo).</summary>
    public long? HostMemoryMiB { get; set; }

    /// <summary>Sandboxes with a VM (starting, running or stopping) at once; paused ones do not count (their resume is admitted again).</summary>
    public int MaxSandboxes { get; set; } = 256;

    /// <summary>Captures (snapshot, branch, pause) running at once across all sandboxes; more queue for up to <see cref="CaptureSlotWait"/>, then get 429.</summary>
    public int MaxConcurrentCaptures { get; set; } = 4;

    /// <summary>
    /// How long a capture waits for a free slot before answering 429 <c>too_many_captures</c>. Captures are short but
    /// their length follows the host's load (seconds each on a busy TCG host); a burst of branches should queue, not
    /// fail, while a host that stays saturated still says so.
    /// </summary>
    public TimeSpan CaptureSlotWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a lifecycle operation waits for another one on the same sandbox before answering 409.</summary>
    public TimeSpan BusyWait { get; set; } = TimeSpan.FromSeconds(5);

    public const int MaxBranchCount = 100;

    /// <summary>
    /// Creates from an image restore from a boot snapshot of their shape (image version, kernel, agent, vCPUs,
    /// memory), published by the first create of that shape. False: every create boots cold, as with
    /// <c>coldBoot: true</c>, and no boot snapshot is made (those already published are still collected once stale).
    /// </summary>
    public bool BootSnapshots { get; set; } = true;

    /// <summary>
    /// Children of one snapshot (a branch, or a create with a count) started at once; null (the default) picks by
    /// accelerator (<see cref="ChildStartParallelism"/>). Under KVM a child's start is mostly waiting (QEMU start,
    /// restore, the agent's answer), so running many together overlaps the waits. Under TCG it is guest CPU (every
    /// child translates the code it runs afresh), so more at once than the host has cores only makes each child
    /// slower: branching 20 children on 2 cores answered in 1.15× one cold boot 16 at a time, 0.94× 2 at a time
    /// (docs/benchmarks.md, "Fan-out").
    /// </summary>
    public int? MaxParallelChildStarts { get; set; }

    /// <summary>Children started at once under KVM when <see cref="MaxParallelChildStarts"/> is not set.</summary>
    public const int KvmChildStarts = 16;

    /// <summary><see cref="MaxParallelChildStarts"/>, or the default for <paramref name="accel"/>: 16 under KVM, one per core (at least 2) under TCG.</summary>
    public int ChildStartParallelism(string accel) =>
        MaxParallelChildStarts ?? (accel == "kvm" ? KvmChildStarts : Math.Max(2, Environment.ProcessorCount));

    /// <summary>How each VM is jailed: its uid range (which also keys the host firewall), cgroup limits, console cap.</summary>
    public Boot.VmJailOptions Jail { get; set; } = new();

    /// <summary>Checks the settings once at start-up, so a bad value fails there and not mid-request.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"engine option {what}");
        }
        Require(!string.IsNullOrWhiteSpace(DataDir), "DataDir must be set");
        Jail.Validate();
        Require(Accel is "auto" or "kvm" or "tcg", $"Accel must be auto, kvm or tcg (got '{Accel}')");
        Require(MaxParallelChildStarts is null or >= 1, "MaxParallelChildStarts must be at least 1 (or unset for the default)");
        Require(DefaultVcpus >= 1 && DefaultVcpus <= MaxVcpus, $"DefaultVcpus must be between 1 and MaxVcpus ({MaxVcpus})");
        Require(MinMemoryMiB >= 16 && MinMemoryMiB <= DefaultMemoryMiB && DefaultMemoryMiB <= MaxMemoryMiB,
            "memory limits must satisfy 16 <= MinMemoryMiB <= DefaultMemoryMiB <= MaxMemoryMiB");
        Require(MaxPortsPerSandbox >= 0, "MaxPortsPerSandbox must not be negative");
        Require(MaxConcurrentCaptures >= 1, "MaxConcurrentCaptures must be at least 1");
        Require(MaxBufferedOutputBytes >= 1024, "MaxBufferedOutputBytes must be at least 1 KiB");
        Require(MaxBufferedJsonBytes >= 1024, "MaxBufferedJsonBytes must be at least 1 KiB");
        Require(MaxBufferedExecsPerSandbox >= 1 && MaxBufferedExecs >= 1, "MaxBufferedExecsPerSandbox and MaxBufferedExecs must be at least 1");
        Require(MaxListEntries >= 1 && MaxListBytes >= 1024, "MaxListEntries must be at least 1 and MaxListBytes at least 1 KiB");
        Require(MaxMemoryShare > 0 && MaxMemoryShare <= 4, "MaxMemoryShare must be > 0 (and at most 4, which already overcommits)");
        Require(HostMemoryMiB is null or > 0, "HostMemoryMiB must be positive when set");
        Require(MaxSandboxes >= 1, "MaxSandboxes must be at least 1");
        Require(MaxTimeout is null || MaxTimeout >= TimeSpan.FromSeconds(1), "MaxTimeout must be at least 1 s when set");
        Require(DefaultTimeout is null || (DefaultTimeout >= TimeSpan.FromSeconds(1) && (MaxTimeout is null || DefaultTimeout <= MaxTimeout)),
            "DefaultTimeout must be at least 1 s and at most MaxTimeout when set");
        Require(DefaultExecTimeout is null || (DefaultExecTimeout > TimeSpan.Zero && DefaultExecTimeout <= Sandboxes.RequestValidation.MaxExecTimeout),
            $"DefaultExecTimeout must be positive and at most {Sandboxes.RequestValidation.MaxExecTimeout.TotalHours} h when set");
        foreach (var (name, value) in new[] { ("AgentTimeout", AgentTimeout), ("RestoreAgentTimeout", RestoreAgentTimeout),
                     ("AgentReconnectTimeout", AgentReconnectTimeout), ("StopGrace", StopGrace), ("BusyWait", BusyWait), ("ExecSlotWait", ExecSlotWait),
                     ("CaptureSlotWait", CaptureSlotWait) })
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
