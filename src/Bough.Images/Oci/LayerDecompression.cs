using System.Diagnostics;
using System.IO.Compression;

namespace Bough.Images.Oci;

/// <summary>
/// A layer blob opened as a plain tar stream. gzip is decoded in-process; zstd by piping through the
/// host's <c>zstd -dc</c> (no zstd package is available to us). The compression is detected from the
/// magic bytes, because media types lie in practice (Docker labels some zstd layers as gzip); the media
/// type only decides when the magic is ambiguous.
/// </summary>
internal sealed class LayerDecompression : IAsyncDisposable
{
    private static readonly byte[] GzipMagic = [0x1f, 0x8b];
    private static readonly byte[] ZstdMagic = [0x28, 0xb5, 0x2f, 0xfd];

    private readonly FileStream _file;
    private readonly Process? _zstd;
    private readonly Task<string>? _zstdStderr;
    private readonly string _digest;

    public Stream Tar { get; }

    private LayerDecompression(FileStream file, Stream tar, Process? zstd, Task<string>? stderr, string digest)
    {
        _file = file;
        Tar = tar;
        _zstd = zstd;
        _zstdStderr = stderr;
        _digest = digest;
    }

    public static async Task<LayerDecompression> OpenAsync(LayerBlob layer, CancellationToken ct)
    {
        var file = new FileStream(layer.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        try
        {
            var magic = new byte[4];
            var n = await file.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, ct);
            file.Position = 0;
            var head = magic.AsSpan(0, n);
            if (head.StartsWith(ZstdMagic))
                return StartZstd(file, layer);
            if (head.StartsWith(GzipMagic))
                return new LayerDecompression(file, new GZipStream(file, CompressionMode.Decompress, leaveOpen: true), null, null, layer.Digest);
            if (layer.MediaType.EndsWith("zstd", StringComparison.Ordinal) || layer.MediaType.EndsWith("gzip", StringComparison.Ordinal))
                throw new ImageException("image_corrupt", $"layer {layer.Digest} is declared {layer.MediaType} but is not compressed that way");
            return new LayerDecompression(file, file, null, null, layer.Digest);
        }
        catch
        {
            await file.DisposeAsync();
            throw;
        }
    }

    private static LayerDecompression StartZstd(FileStream file, LayerBlob layer)
    {
        var psi = new ProcessStartInfo("zstd")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            ArgumentList = { "-dcq", "--", layer.Path },
        };
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new InvalidOperationException("zstd did not start");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new ImageException("image_unsupported", $"layer {layer.Digest} is zstd-compressed and the host's zstd could not run ({e.Message}); install zstd", e);
        }
        return new LayerDecompression(file, p.StandardOutput.BaseStream, p, p.StandardError.ReadToEndAsync(), layer.Digest);
    }

    /// <summary>
    /// Reads what the tar reader left (padding after the end-of-archive blocks) so the decompressor
    /// checks the whole stream (gzip CRC, zstd exit status); a truncated or corrupt layer fails here.
    /// Callers that count the bytes drain their counted view of <see cref="Tar"/> first.
    /// </summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        await Tar.CopyToAsync(Stream.Null, ct);
        if (_zstd is not null)
        {
            await _zstd.WaitForExitAsync(ct);
            if (_zstd.ExitCode != 0)
                throw new ImageException("image_corrupt", $"layer {_digest}: zstd failed: {(await _zstdStderr!).Trim()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_zstd is not null)
        {
            try { if (!_zstd.HasExited) _zstd.Kill(); } catch (InvalidOperationException) { }
            await _zstd.WaitForExitAsync(CancellationToken.None);
            _zstd.Dispose();
        }
        if (!ReferenceEquals(Tar, _file)) await Tar.DisposeAsync();
        await _file.DisposeAsync();
    }
}
