using System.Globalization;
using System.Text.Json;

namespace Bough.Vmm;

/// <summary>What <c>qemu-img info</c> says about one image of a chain.</summary>
/// <param name="Filename">The image file.</param>
/// <param name="Format">Its format (<c>qcow2</c>, <c>raw</c>, ...).</param>
/// <param name="VirtualSize">Size of the disk the guest sees, in bytes.</param>
/// <param name="BackingFile">The backing file as the image's header names it (resolved to a full path), or null.</param>
public sealed record QemuImageInfo(string Filename, string Format, long VirtualSize, string? BackingFile);

/// <summary><c>qemu-img</c> exited non-zero or could not run; the message quotes its stderr.</summary>
public sealed class QemuImgException : Exception
{
    public QemuImgException(string message, int exitCode, string stderr, Exception? inner = null) : base(message, inner)
    {
        ExitCode = exitCode;
        Stderr = stderr;
    }

    /// <summary>qemu-img's exit code; -1 when it could not be started.</summary>
    public int ExitCode { get; }

    /// <summary>What qemu-img printed on stderr.</summary>
    public string Stderr { get; }
}

/// <summary>
/// Every <c>qemu-img</c> use in Bough: sandbox overlays, capture overlays, image builds (raw → qcow2),
/// standalone copies (flatten) and inspection. All new qcow2 overlays name their backing file by absolute
/// path with an explicit format (<c>-F qcow2</c>): a relative name would be resolved against the overlay's
/// directory, and a probed format lets a guest-written raw image pass itself off as something else.
/// </summary>
public static class QemuImg
{
    /// <summary>The executable; looked up on PATH (Debian package <c>qemu-utils</c>).</summary>
    public const string Executable = "qemu-img";

    /// <summary>
    /// Creates <paramref name="overlayPath"/>: a new, empty qcow2 whose backing file is the qcow2
    /// <paramref name="backingFile"/> (read-only from then on: writing it would corrupt every overlay on it).
    /// qemu-img opens the backing file to take its size, so it must not be held open for writing (use
    /// <see cref="CreateOverlayOfImageInUseAsync"/> for the disk of a running VM).
    /// </summary>
    public static Task CreateOverlayAsync(string backingFile, string overlayPath, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backingFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(overlayPath);
        return RunCheckedAsync(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", Path.GetFullPath(backingFile),
            Path.GetFullPath(overlayPath)], ct);
    }

    /// <summary>
    /// Like <see cref="CreateOverlayAsync"/>, for a backing file a running QEMU has open for writing (its lock
    /// stops qemu-img from opening it): the backing file is not opened (<c>-u</c>) and the size is given.
    /// </summary>
    public static Task CreateOverlayOfImageInUseAsync(string backingFile, string overlayPath, long virtualSize, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backingFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(overlayPath);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(virtualSize);
        return RunCheckedAsync(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", Path.GetFullPath(backingFile), "-u",
            Path.GetFullPath(overlayPath), virtualSize.ToString(CultureInfo.InvariantCulture)], ct);
    }

    /// <summary>Creates an empty qcow2 of <paramref name="virtualSize"/> bytes without a backing file.</summary>
    public static Task CreateAsync(string path, long virtualSize, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(virtualSize);
        return RunCheckedAsync(["create", "-q", "-f", "qcow2", Path.GetFullPath(path),
            virtualSize.ToString(CultureInfo.InvariantCulture)], ct);
    }

    /// <summary>Converts the raw disk image <paramref name="rawPath"/> (e.g. an ext4 file system) into a new qcow2.</summary>
    public static Task ConvertRawToQcow2Async(string rawPath, string qcow2Path, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rawPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(qcow2Path);
        return RunCheckedAsync(["convert", "-q", "-f", "raw", "-O", "qcow2", Path.GetFullPath(rawPath), Path.GetFullPath(qcow2Path)], ct);
    }

    /// <summary>
    /// Writes the whole chain under the qcow2 <paramref name="qcow2Path"/> (it and all its backing files) into
    /// one new qcow2 without a backing file, which shares nothing with the chain it came from.
    /// </summary>
    public static Task FlattenAsync(string qcow2Path, string destinationPath, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(qcow2Path);
        ArgumentException.ThrowIfNullOrWhiteSpace(destinationPath);
        return RunCheckedAsync(["convert", "-q", "-f", "qcow2", "-O", "qcow2", Path.GetFullPath(qcow2Path),
            Path.GetFullPath(destinationPath)], ct);
    }

    /// <summary>The image and every backing file under it, top first. Works on images in use (<c>-U</c>).</summary>
    public static async Task<IReadOnlyList<QemuImageInfo>> BackingChainAsync(string path, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ProcessResult r = await RunCheckedAsync(["info", "-U", "--backing-chain", "--output=json", Path.GetFullPath(path)], ct)
            .ConfigureAwait(false);
        return ParseInfoChain(r.Stdout);
    }

    /// <summary>The top image of <paramref name="path"/>'s chain, see <see cref="BackingChainAsync"/>.</summary>
    public static async Task<QemuImageInfo> InfoAsync(string path, CancellationToken ct) =>
        (await BackingChainAsync(path, ct).ConfigureAwait(false))[0];

    /// <summary>Parses <c>qemu-img info --backing-chain --output=json</c> (a JSON array, top image first).</summary>
    internal static IReadOnlyList<QemuImageInfo> ParseInfoChain(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var chain = new List<QemuImageInfo>();
        foreach (JsonElement e in doc.RootElement.EnumerateArray())
        {
            string? backing = e.TryGetProperty("full-backing-filename", out var full) ? full.GetString()
                : e.TryGetProperty("backing-filename", out var b) ? b.GetString() : null;
            chain.Add(new QemuImageInfo(
                e.GetProperty("filename").GetString() ?? "",
                e.GetProperty("format").GetString() ?? "",
                e.GetProperty("virtual-size").GetInt64(),
                backing));
        }
        if (chain.Count == 0) throw new InvalidDataException("qemu-img info returned no image.");
        return chain;
    }

    private static async Task<ProcessResult> RunCheckedAsync(IReadOnlyList<string> args, CancellationToken ct)
    {
        ProcessResult r;
        try
        {
            r = await ProcessRunner.RunAsync(Executable, args, ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new QemuImgException($"Could not run {Executable} (is the qemu-utils package installed?): {e.Message}", -1, "", e);
        }
        if (r.Succeeded) return r;
        string err = r.Stderr.Trim();
        if (err.Length == 0) err = r.Stdout.Trim();
        throw new QemuImgException($"{Executable} {string.Join(' ', args)} failed with exit code {r.ExitCode}: {err}", r.ExitCode, r.Stderr);
    }
}
