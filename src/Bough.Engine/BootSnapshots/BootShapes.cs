using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.Setup;

namespace Bough.Engine.BootSnapshots;

/// <summary>
/// The shape key of a boot snapshot: a hash of everything a VM restored from it silently relies on being the
/// same as in the VM that was captured: the image version (its disk file), kernel, initrd and command line, the
/// guest agent, the accelerator, vCPUs and memory. Any change gives another key, so a boot snapshot is never
/// restored into a world it was not made in, and one whose key is no longer current is stale.
/// </summary>
/// <remarks>
/// The kernel, initrd and agent are hashed by content once per daemon (they do not change under a running
/// daemon: a new kernel or agent comes with a restart). The image disk is identified by path, size and mtime:
/// a published image is immutable and a re-pull or rebuild publishes a new file. No locks are taken, so the
/// garbage collector may ask while a lifecycle lease is held.
/// </remarks>
internal sealed class BootShapes(PreparedHost host, VmSpecFactory specs, IBootImages images)
{
    /// <summary>Bumped when the meaning of a key changes (e.g. something is added to it).</summary>
    private const string Format = "bough-boot-shape/1";

    private readonly Lazy<Task<string>> _platform = new(() => PlatformAsync(host, specs.Accel));

    /// <summary>The key of a boot of <paramref name="image"/> (whose disk is <paramref name="imageDisk"/>) with this shape.</summary>
    public async Task<string> KeyAsync(string image, string imageDisk, int vcpus, int memoryMiB, CancellationToken ct)
    {
        var platform = await _platform.Value.WaitAsync(ct);
        return Hash(string.Create(CultureInfo.InvariantCulture,
            $"{Format}\nimage={image}\ndisk={FileStamp(imageDisk)}\nplatform={platform}\nvcpus={vcpus}\nmemory={memoryMiB}"))[..32];
    }

    /// <summary>
    /// True when nothing may start from <paramref name="boot"/> any more: its key was never recorded (a publish cut
    /// short, or retired after a failed restore), or its image, kernel or agent has changed since it was made.
    /// </summary>
    public async Task<bool> IsStaleAsync(SnapshotRecord boot, CancellationToken ct)
    {
        if (boot.BootKey is not { } key) return true;
        var disk = await images.CurrentDiskAsync(boot.Image, ct);
        return disk is null || key != await KeyAsync(boot.Image, disk, boot.Vcpus, boot.MemoryMiB, ct);
    }

    private static async Task<string> PlatformAsync(PreparedHost host, string accel)
    {
        var kernel = host.Kernel;
        return Hash(string.Join('\n',
            $"accel={accel}", $"kernel-version={kernel.Version}", $"cmdline={host.GuestCommandLine}",
            $"kernel={await ContentHashAsync(kernel.KernelPath)}", $"initrd={await ContentHashAsync(kernel.InitrdPath)}",
            $"agent={await ContentHashAsync(host.AgentPath)}"));
    }

    /// <summary>SHA-256 of a file's bytes; a missing or unreadable file is named by its path instead (engine tests have none).</summary>
    private static async Task<string> ContentHashAsync(string path)
    {
        try
        {
            await using var file = File.OpenRead(path);
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(file));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "unreadable:" + Path.GetFullPath(path);
        }
    }

    private static string FileStamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists
            ? string.Create(CultureInfo.InvariantCulture, $"{info.FullName}:{info.Length}:{info.LastWriteTimeUtc.Ticks}")
            : "missing:" + info.FullName;
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
