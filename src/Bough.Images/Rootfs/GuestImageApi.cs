// STUB SURFACE — helper "rootfs" replaces these bodies (and may split into files). Signatures are the
// contract the engine codes against; change them only together with the engine.
using Bough.HostSetup;
using Bough.Images.Oci;

namespace Bough.Images.Rootfs;

/// <summary>An image published under <c>&lt;data&gt;/images/oci/&lt;Id&gt;/</c>: read-only disk.qcow2 and image.json.</summary>
public sealed record GuestImage(string Id, string Name, string Dir, string DiskPath, OciImageConfig Config,
    string? Digest, long ContentBytes, long DiskBytes, DateTimeOffset BuiltAt);

/// <summary>
/// Turns a root directory (a flattened OCI image, or a recipe's debootstrap tree) into a bootable
/// guest image: injects the agent and its runtime under <c>/.bough</c>, writes resolv.conf/hosts/hostname,
/// builds ext4 → qcow2 in <c>images/oci/.staging</c> (not images/.staging, which the base builder wipes), and publishes by renaming into <c>images/oci/&lt;id&gt;</c>.
/// </summary>
public sealed class GuestImageBuilder(string dataDir, string agentPath, string busyboxPath)
{
    /// <summary>Where new image builds should lay out their root directory (a fresh dir under images/oci/.staging).</summary>
    public string NewStagingDir() => throw new NotImplementedException();

    /// <param name="rootDir">A staging root (from <see cref="NewStagingDir"/>); consumed (moved or deleted).</param>
    /// <param name="diskSizeBytes">Null: content plus headroom.</param>
    public Task<GuestImage> PublishAsync(string name, string rootDir, OciImageConfig config, string? digest,
        long? diskSizeBytes, IProgress<SetupProgress>? progress, CancellationToken ct) => throw new NotImplementedException();

    /// <summary>Published image directories (for start-up reconciliation against the catalog).</summary>
    public IReadOnlyList<string> ListPublishedIds() => throw new NotImplementedException();

    /// <summary>Removes a published image's directory (the caller made sure nothing uses it).</summary>
    public void Delete(string id) => throw new NotImplementedException();

    /// <summary>Removes staging leftovers of crashed builds.</summary>
    public void CleanStaging() => throw new NotImplementedException();
}

/// <summary>Built-in image recipes (<c>bough images build NAME</c>).</summary>
public static class ImageRecipes
{
    public static IReadOnlyList<string> Names { get; } = ["debian-python"];

    /// <summary>Lays out the recipe's root filesystem in <paramref name="rootDir"/> (e.g. debootstrap) and returns its config.</summary>
    public static Task<OciImageConfig> BuildRootAsync(string recipe, string rootDir, IProgress<SetupProgress>? progress, CancellationToken ct)
        => throw new NotImplementedException();
}
