using System.Security.Cryptography;
using System.Text.Json;
using Bough.HostSetup;
using Bough.Images.Disk;
using Bough.Images.Oci;
using Bough.Images.Rootfs;

namespace Bough.Images.Publish;

/// <summary>
/// Turns a root directory (a flattened OCI image, or a recipe's debootstrap tree) into a bootable
/// guest image: injects the agent and its runtime under <c>/.bough</c> (<see cref="GuestRuntime"/>),
/// writes resolv.conf/hosts/hostname, builds ext4 → qcow2 in <c>images/oci/.staging</c> (not
/// images/.staging, which the base builder wipes) and publishes by renaming into <c>images/oci/&lt;id&gt;</c>.
/// <para>
/// Ids are <c>img-</c> + 12 random hex digits, not a content hash: two builds of one reference are two
/// images (the catalog decides which one a name points at), and a published directory is never
/// replaced, because sandbox overlays name their backing file by path.
/// </para>
/// <para>
/// Disk size, unless given: <c>max(1 GiB, content × 1.5 + 512 MiB)</c>, rounded up to a MiB. The file is
/// sparse and the qcow2 stores only written clusters, so headroom costs nothing until sandboxes use it;
/// 512 MiB covers the journal, metadata and a pip install or two. Inodes: at least twice the tree's entries.
/// </para>
/// <para>
/// Staging is private: <c>images/oci/.staging</c> and each build's work directory are 0700 while they
/// exist, because a flattened root holds the image's setuid-root files as real host files, which no
/// other user of the host may reach.
/// </para>
/// </summary>
/// <param name="limits">Caps for the tree a build measures (entries); default <see cref="ImageLimits"/>.</param>
public sealed class GuestImageBuilder(string dataDir, string agentPath, string busyboxPath, ImageLimits? limits = null)
{
    public const string DiskFile = "disk.qcow2";
    public const string MetadataFile = "image.json";
    public const string IdPrefix = "img-";
    public const long MinDiskBytes = 1L << 30;
    public const long HeadroomBytes = 512L << 20;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public string Root { get; } = Path.Combine(Path.GetFullPath(dataDir), "images", "oci");
    public string StagingRoot => Path.Combine(Root, ".staging");

    /// <summary>The default disk size for a tree of <paramref name="contentBytes"/>.</summary>
    public static long DefaultDiskSize(long contentBytes) =>
        DiskImage.RoundUpMiB(Math.Max(MinDiskBytes, contentBytes + contentBytes / 2 + HeadroomBytes));

    /// <summary>Where new image builds should lay out their root directory (a fresh dir under images/oci/.staging).</summary>
    public string NewStagingDir()
    {
        Files.CreatePrivateDirectory(StagingRoot);
        var work = Path.Combine(StagingRoot, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        Files.CreatePrivateDirectory(work);
        var root = Path.Combine(work, "rootfs");
        Files.CreateGuestRoot(root); // the image's own "/" (0755): its mode goes into the ext4 as it is
        return root;
    }

    /// <param name="rootDir">A staging root (from <see cref="NewStagingDir"/>); consumed (moved or deleted).</param>
    /// <param name="diskSizeBytes">Null: content plus headroom (see the class remarks).</param>
    /// <exception cref="ImageException">image_build_failed (with the tool's stderr) for any failure, cancellation included; nothing is left behind.</exception>
    public async Task<GuestImage> PublishAsync(string name, string rootDir, OciImageConfig config, string? digest,
        long? diskSizeBytes, IProgress<SetupProgress>? progress, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(config);
        rootDir = Path.GetFullPath(rootDir);
        var parent = Path.GetDirectoryName(rootDir)!;
        bool fromStaging = Path.GetDirectoryName(parent) == StagingRoot;
        var work = fromStaging ? parent : Path.GetDirectoryName(NewStagingDir())!;
        try
        {
            if (diskSizeBytes is <= 0) throw new ImageException("invalid_request", $"disk size must be positive, got {diskSizeBytes}");
            if (!Directory.Exists(rootDir)) throw new ImageException("image_build_failed", $"root directory {rootDir} does not exist");

            progress?.Report(new SetupProgress("image", "installing the Bough guest runtime (/.bough)"));
            await GuestRuntime.InjectAsync(rootDir, busyboxPath, agentPath, config.WorkingDir, ct);

            var tree = DiskImage.Measure(rootDir, (limits ?? new ImageLimits()).MaxImageEntries, ct);
            long size = diskSizeBytes is { } requested ? DiskImage.RoundUpMiB(requested) : DefaultDiskSize(tree.Bytes);
            progress?.Report(new SetupProgress("image", $"creating ext4 ({size >> 20} MiB, {tree.Bytes >> 20} MiB of content, {tree.Entries} entries)"));
            var output = Path.Combine(work, "out");
            Directory.CreateDirectory(output);
            var disk = Path.Combine(output, DiskFile);
            await DiskImage.BuildAsync(rootDir, Path.Combine(work, "rootfs.ext4"), disk, size, "bough-root",
                DiskImage.InodeFloor(tree), ct);
            Files.TryDeleteDirectory(rootDir);

            var id = IdPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            var meta = new ImageMetadata(id, name, digest, config, tree.Bytes, size, DateTimeOffset.UtcNow, GuestRuntime.Version);
            await File.WriteAllTextAsync(Path.Combine(output, MetadataFile), JsonSerializer.Serialize(meta, Json), ct);
            ct.ThrowIfCancellationRequested();

            var final = Path.Combine(Root, id);
            Directory.Move(output, final); // the publish: the directory appears whole or not at all
            progress?.Report(new SetupProgress("image", $"image {id} ready ({size >> 20} MiB disk)"));
            return meta.ToImage(final);
        }
        catch (Exception e) when (e is not ImageException)
        {
            throw new ImageException("image_build_failed", e switch
            {
                OperationCanceledException => $"building image '{name}' was cancelled",
                CommandFailedException c => $"building image '{name}' failed: {c.Message}",
                _ => $"building image '{name}' failed: {e.Message}",
            }, e);
        }
        finally
        {
            Files.TryDeleteDirectory(work);
            if (!fromStaging) Files.TryDeleteDirectory(rootDir);
        }
    }

    /// <summary>The published image <paramref name="id"/>, or null if absent or unreadable.</summary>
    public GuestImage? TryGet(string id)
    {
        if (!IsValidId(id)) return null;
        var dir = Path.Combine(Root, id);
        try
        {
            var meta = JsonSerializer.Deserialize<ImageMetadata>(File.ReadAllText(Path.Combine(dir, MetadataFile)), Json);
            return meta is null || meta.Id != id || !File.Exists(Path.Combine(dir, DiskFile)) ? null : meta.ToImage(dir);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Published image directories (for start-up reconciliation against the catalog).</summary>
    public IReadOnlyList<string> ListPublishedIds() =>
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).OfType<string>().Where(IsValidId).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>Removes a published image's directory (the caller made sure nothing uses it).</summary>
    public void Delete(string id)
    {
        if (!IsValidId(id)) throw new ArgumentException($"'{id}' is not an image id", nameof(id));
        var dir = Path.Combine(Root, id);
        if (!Directory.Exists(dir)) return;
        // Rename first so a crash mid-delete leaves staging garbage (cleaned at start-up), never half an image.
        Files.CreatePrivateDirectory(StagingRoot);
        var doomed = Path.Combine(StagingRoot, "deleted-" + id + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.Move(dir, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>Removes staging leftovers of crashed builds. Call only when no build of this data dir runs.</summary>
    public void CleanStaging() => Files.TryDeleteDirectory(StagingRoot);

    public static bool IsValidId(string? id) =>
        id is { Length: 16 } && id.StartsWith(IdPrefix, StringComparison.Ordinal) && id[4..].All(char.IsAsciiHexDigitLower);


    private sealed record ImageMetadata(string Id, string Name, string? Digest, OciImageConfig Config, long ContentBytes,
        long DiskBytes, DateTimeOffset BuiltAt, int RuntimeVersion)
    {
        public GuestImage ToImage(string dir) =>
            new(Id, Name, dir, Path.Combine(dir, DiskFile), Config, Digest, ContentBytes, DiskBytes, BuiltAt);
    }
}
