using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bough.HostSetup;
using Bough.Images.Concurrency;
using Bough.Images.Disk;
using Bough.Images.Kernel;
using Bough.Images.Rootfs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Images.Publish;

/// <summary>Tunables of <see cref="BaseImageBuilder"/>.</summary>
public sealed record BaseImageOptions
{
    /// <summary>
    /// Filesystem size. Sparse, and the qcow2 only stores what is written, so a roomy default costs
    /// nothing until sandboxes use it. Grown automatically if the content needs more.
    /// </summary>
    public long DiskSizeBytes { get; init; } = 2L << 30;
    public string BusyboxPath { get; init; } = HostRequirements.BusyboxPath;
}

/// <summary>
/// Builds the <c>base</c> image (ext4 in a qcow2) from host busybox, host libraries and the agent.
/// Each build is keyed by a hash of its inputs; <see cref="EnsureBaseAsync"/> rebuilds only when one
/// changed. Builds happen in <c>&lt;data&gt;/images/.staging/&lt;random&gt;</c> under a file lock and are
/// published by renaming into <c>&lt;data&gt;/images/base/&lt;hash&gt;/</c> and flipping <c>current</c>.
/// Published versions are never modified, because running sandboxes' overlays reference them by path.
/// </summary>
public sealed class BaseImageBuilder
{
    public const string BaseName = "base";
    private const string DiskFile = "base.qcow2";
    private const string ManifestFile = "manifest.json";

    private readonly string _dataDir;
    private readonly GuestKernel _kernel;
    private readonly string _agentPath;
    private readonly ILogger _log;
    private readonly BaseImageOptions _options;
    private readonly SingleFlight<string, Flight<BaseImage>> _ensure = new(StringComparer.Ordinal);

    public BaseImageBuilder(string dataDir, GuestKernel kernel, string agentPath, ILogger? l = null)
        : this(dataDir, kernel, agentPath, l, null) { }

    public BaseImageBuilder(string dataDir, GuestKernel kernel, string agentPath, ILogger? l, BaseImageOptions? options)
    {
        _dataDir = Path.GetFullPath(dataDir);
        _kernel = kernel;
        _agentPath = Path.GetFullPath(agentPath);
        _log = l ?? NullLogger.Instance;
        _options = options ?? new BaseImageOptions();
    }

    public string ImagesRoot => Path.Combine(_dataDir, "images");

    /// <summary>What a build is made of; its hash names the build.</summary>
    public sealed record ImageInputs(int Recipe, string Scripts, string KernelVersion, string Busybox, string Agent,
        IReadOnlyDictionary<string, string> Libraries, long DiskSizeBytes);

    private sealed record ImageManifest(string Name, string InputHash, ImageInputs Inputs, DateTimeOffset BuiltAt, long ContentBytes);

    /// <summary>The published image called <paramref name="name"/>, or null. Does not check whether it is current.</summary>
    public BaseImage? TryGet(string name)
    {
        try
        {
            var current = Path.Combine(ImagesRoot, name, "current");
            if (!File.Exists(current)) return null;
            var version = File.ReadAllText(current).Trim();
            if (version.Length == 0 || version.Contains('/')) return null;
            var dir = Path.Combine(ImagesRoot, name, version);
            var manifestPath = Path.Combine(dir, ManifestFile);
            var disk = Path.Combine(dir, DiskFile);
            if (!File.Exists(manifestPath) || !File.Exists(disk)) return null;
            var m = JsonSerializer.Deserialize<ImageManifest>(File.ReadAllText(manifestPath));
            return m is null ? null : new BaseImage(m.Name, disk, m.InputHash, m.BuiltAt);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Hash of the current inputs (kernel version, busybox, agent, host libraries, recipe, size).</summary>
    public async Task<(string Hash, ImageInputs Inputs)> ComputeInputsAsync(CancellationToken ct)
    {
        if (!File.Exists(_agentPath))
            throw new SetupException($"guest agent binary {_agentPath} does not exist (build Bough.Cli, or set {AgentLocator.EnvironmentVariable})");
        if (!File.Exists(_options.BusyboxPath))
            throw new SetupException($"{_options.BusyboxPath} is missing; install busybox-static");
        var libs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, path) in AgentLibraries.FindOnHost())
            libs[name] = await Files.Sha256Async(path, ct);
        var inputs = new ImageInputs(BaseRootfs.RecipeVersion, BaseRootfs.ScriptsHash(), _kernel.Version, await Files.Sha256Async(_options.BusyboxPath, ct),
            await Files.Sha256Async(_agentPath, ct), libs, _options.DiskSizeBytes);
        var canonical = JsonSerializer.Serialize(inputs);
        return (Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical))), inputs);
    }

    /// <summary>
    /// The current <c>base</c> image, built first if missing or if any input changed.
    /// Concurrent calls on this instance share one build; other instances and processes wait on a file lock.
    /// </summary>
    public Task<BaseImage> EnsureBaseAsync(IProgress<SetupProgress>? p, CancellationToken ct) =>
        _ensure.RunAsync(BaseName, token => EnsureBaseCoreAsync(p, token), ct);

    /// <summary>Whether the published base image matches the current inputs (for doctor).</summary>
    public async Task<bool> IsBaseCurrentAsync(CancellationToken ct) =>
        TryGet(BaseName) is { } img && img.InputHash == (await ComputeInputsAsync(ct)).Hash;

    private async Task<BaseImage> EnsureBaseCoreAsync(IProgress<SetupProgress>? p, CancellationToken ct)
    {
        var (hash, inputs) = await ComputeInputsAsync(ct);
        if (TryGet(BaseName) is { } existing && existing.InputHash == hash) return existing;

        Directory.CreateDirectory(ImagesRoot);
        using var _ = await FileLock.AcquireAsync(Path.Combine(ImagesRoot, ".lock"), ct);
        if (TryGet(BaseName) is { } built && built.InputHash == hash) return built; // another builder finished meanwhile

        var stagingRoot = Path.Combine(ImagesRoot, ".staging");
        Files.TryDeleteDirectory(stagingRoot); // with the lock held, anything there is a crashed build's
        var work = Files.NewStagingDir(stagingRoot);
        try
        {
            var image = await BuildAsync(work, hash, inputs, p, ct);
            _log.LogInformation("built base image {Hash} at {Path}", hash[..12], image.DiskPath);
            return image;
        }
        finally
        {
            Files.TryDeleteDirectory(work);
        }
    }

    private async Task<BaseImage> BuildAsync(string work, string hash, ImageInputs inputs, IProgress<SetupProgress>? p, CancellationToken ct)
    {
        p?.Report(new SetupProgress("image", "laying out the root filesystem"));
        var root = Path.Combine(work, "rootfs");
        await BaseRootfs.WriteAsync(root, _options.BusyboxPath, _agentPath, AgentLibraries.FindOnHost(), ct);

        var tree = DiskImage.Measure(root, long.MaxValue, ct);
        var content = tree.Bytes;
        // Room for the journal, metadata and growth even if a user asks for a tiny disk.
        var size = DiskImage.RoundUpMiB(Math.Max(_options.DiskSizeBytes, content * 2 + (256L << 20)));

        p?.Report(new SetupProgress("image", $"creating ext4 ({size >> 20} MiB, {content >> 20} MiB used) and converting to qcow2"));
        var output = Path.Combine(work, "out");
        Directory.CreateDirectory(output);
        var disk = Path.Combine(output, DiskFile);
        await DiskImage.BuildAsync(root, Path.Combine(work, "rootfs.ext4"), disk, size, "bough-root", DiskImage.InodeFloor(tree), ct);
        Files.TryDeleteDirectory(root);

        var builtAt = DateTimeOffset.UtcNow;
        File.WriteAllText(Path.Combine(output, ManifestFile),
            JsonSerializer.Serialize(new ImageManifest(BaseName, hash, inputs, builtAt, content), ManifestJson));

        var baseDir = Path.Combine(ImagesRoot, BaseName);
        Directory.CreateDirectory(baseDir);
        var version = hash[..16];
        var final = Path.Combine(baseDir, version);
        if (Directory.Exists(final))
        {
            // Same inputs published earlier but 'current' moved away; reuse it rather than replace a
            // file that overlays may be using.
            _log.LogInformation("base image {Version} already exists; making it current", version);
        }
        else
        {
            Directory.Move(output, final);
        }
        Files.WriteAtomic(Path.Combine(baseDir, "current"), version + "\n");
        p?.Report(new SetupProgress("image", $"base image {version} ready"));
        return TryGet(BaseName) ?? throw new SetupException($"base image was published to {final} but cannot be read back");
    }

    private static readonly JsonSerializerOptions ManifestJson = new() { WriteIndented = true };
}
