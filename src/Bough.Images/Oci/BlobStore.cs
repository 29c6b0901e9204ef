// Bough runs on Linux only (QEMU microvm hosts); the Unix file-mode APIs below are what it needs.
#pragma warning disable CA1416
using System.Security.Cryptography;

namespace Bough.Images.Oci;

/// <summary>
/// Content-addressed blob cache shared by every image: <c>&lt;data&gt;/blobs/sha256/&lt;hex&gt;</c>. A blob is
/// downloaded to <c>blobs/.staging/</c>, hashed while it streams, and renamed into place only if the
/// digest matches; so a blob in the store is always whole and verified.
/// </summary>
public sealed class BlobStore(string dataDir)
{
    private const int BufferSize = 128 * 1024;

    public string Root { get; } = Path.Combine(Path.GetFullPath(dataDir), "blobs");

    /// <summary>Downloads and imports in progress; anything here at start-up is a leftover.</summary>
    public string StagingDir => Path.Combine(Root, ".staging");

    /// <summary>Where a blob lives (whether or not it is there yet).</summary>
    public string PathFor(string digest) => Path.Combine(Root, "sha256", Digests.Hex(digest));

    /// <summary>The path of a stored blob, or null if absent.</summary>
    public string? TryGet(string digest)
    {
        if (!Digests.IsValid(digest)) return null;
        var path = PathFor(digest);
        return File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Streams <paramref name="source"/> into the store under <paramref name="digest"/>. The bytes are
    /// hashed as they are written to a private staging file, which is renamed into place only when the
    /// digest (and <paramref name="expectedSize"/>, if given) match. Concurrent writers of one digest
    /// each use their own staging file; the second rename replaces an identical file, which is harmless.
    /// </summary>
    /// <param name="onBytes">Called with the running byte count (for progress).</param>
    /// <exception cref="ImageException">image_corrupt when the content does not match.</exception>
    public async Task<string> WriteAsync(string digest, Stream source, long? expectedSize, Action<long>? onBytes, CancellationToken ct)
    {
        var final = PathFor(digest);
        var (actual, size, staging) = await StageAsync(source, expectedSize, onBytes, digest, ct);
        try
        {
            if (actual != digest)
                throw new ImageException("image_corrupt", $"blob {digest} is corrupt: its content hashes to {actual}");
            if (expectedSize is { } want && size != want)
                throw new ImageException("image_corrupt", $"blob {digest} is corrupt: expected {want} bytes, got {size}");
            Publish(staging, final);
            return final;
        }
        finally
        {
            TryDelete(staging);
        }
    }

    /// <summary>Stores a stream whose digest is not known in advance (e.g. a <c>docker save</c> layer) and returns it.</summary>
    public async Task<(string Digest, long Size, string Path)> AddAsync(Stream source, CancellationToken ct)
    {
        var (digest, size, staging) = await StageAsync(source, null, null, null, ct);
        try
        {
            var final = PathFor(digest);
            Publish(staging, final);
            return (digest, size, final);
        }
        finally
        {
            TryDelete(staging);
        }
    }

    /// <summary>Stores bytes already in memory (manifests, configs) under their own digest.</summary>
    public async Task<string> AddBytesAsync(byte[] data, CancellationToken ct)
    {
        var digest = Digests.Of(data);
        if (TryGet(digest) is null)
            await WriteAsync(digest, new MemoryStream(data, writable: false), data.Length, null, ct);
        return digest;
    }

    /// <summary>Copies a local file into the store, verifying it against <paramref name="digest"/>. Used by the importer.</summary>
    public async Task<string> ImportFileAsync(string digest, string path, long? expectedSize, CancellationToken ct)
    {
        if (TryGet(digest) is { } existing) return existing;
        await using var src = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await WriteAsync(digest, src, expectedSize, null, ct);
    }

    /// <summary>Reads a (small) stored blob whole; null if absent.</summary>
    public async Task<byte[]?> TryReadAsync(string digest, CancellationToken ct) =>
        TryGet(digest) is { } p ? await File.ReadAllBytesAsync(p, ct) : null;

    /// <summary>Removes staging leftovers (downloads a crash interrupted). Call at start-up, when no pull runs.</summary>
    public int CleanStaging()
    {
        if (!Directory.Exists(StagingDir)) return 0;
        var n = 0;
        foreach (var f in Directory.EnumerateFileSystemEntries(StagingDir))
        {
            try
            {
                if (Directory.Exists(f) && new DirectoryInfo(f).LinkTarget is null) Directory.Delete(f, true);
                else File.Delete(f);
                n++;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return n;
    }

    private async Task<(string Digest, long Size, string Staging)> StageAsync(
        Stream source, long? expectedSize, Action<long>? onBytes, string? digestForMessages, CancellationToken ct)
    {
        Directory.CreateDirectory(StagingDir);
        Directory.CreateDirectory(Path.Combine(Root, "sha256"));
        var staging = Path.Combine(StagingDir, Path.GetRandomFileName());
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            await using (var dst = new FileStream(staging, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
                BufferSize = 0, Options = FileOptions.Asynchronous,
                // The cache is the daemon's own (layers hold setuid files and whatever a registry served).
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                var buffer = new byte[BufferSize];
                int read;
                while ((read = await source.ReadAsync(buffer, ct)) > 0)
                {
                    total += read;
                    if (expectedSize is { } max && total > max)
                        throw new ImageException("image_corrupt", $"blob {digestForMessages} is corrupt: more than the {max} bytes its descriptor declares");
                    hash.AppendData(buffer, 0, read);
                    await dst.WriteAsync(buffer.AsMemory(0, read), ct);
                    onBytes?.Invoke(total);
                }
                await dst.FlushAsync(ct);
                dst.Flush(flushToDisk: true);
            }
            return ("sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset()), total, staging);
        }
        catch
        {
            TryDelete(staging);
            throw;
        }
    }

    private static void Publish(string staging, string final) => File.Move(staging, final, overwrite: true);

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
