using System.Formats.Tar;
using System.IO.Compression;

namespace Bough.Images.Oci;

/// <summary>Named files of an image archive: an OCI layout directory or a tar (of a layout or a <c>docker save</c>).</summary>
internal interface IArchiveSource : IDisposable
{
    /// <summary>For messages.</summary>
    string Description { get; }
    bool Exists(string name);
    /// <summary>Opens a member for reading; throws image_corrupt when it is missing.</summary>
    Stream Open(string name);
}

internal static class ArchiveSourceExtensions
{
    /// <summary>Reads a member whole; image_unsupported when it is larger than <paramref name="maxBytes"/> (the <see cref="ImageLimits"/> setting <paramref name="limitName"/>).</summary>
    public static async Task<byte[]> ReadSmallAsync(this IArchiveSource source, string name, int maxBytes, string limitName, CancellationToken ct)
    {
        await using var s = source.Open(name);
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await s.ReadAsync(buffer, ct)) > 0)
        {
            if (ms.Length + n > maxBytes)
                throw new ImageException("image_unsupported", $"{source.Description}: {name} is larger than {maxBytes} bytes (image limit {limitName})");
            ms.Write(buffer, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>Member names are relative, '/'-separated, without "./"; anything climbing out is not a member.</summary>
    public static string? NormaliseMember(string name)
    {
        var parts = new List<string>();
        foreach (var p in name.Split('/'))
        {
            if (p is "" or ".") continue;
            if (p == "..") { if (parts.Count == 0) return null; parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return parts.Count == 0 ? null : string.Join('/', parts);
    }
}

/// <summary>
/// An OCI layout (or unpacked <c>docker save</c>) directory on disk. Members are resolved without leaving
/// the directory: names climbing out are not members, and a member that is (or lies under) a symbolic
/// link counts only if its real path is still inside the directory's real path, so a layout cannot
/// make the daemon read host files such as <c>blobs/sha256/x -&gt; /etc/shadow</c>.
/// </summary>
internal sealed class DirectoryArchiveSource(string dir) : IArchiveSource
{
    private readonly string _root = Path.GetFullPath(dir);
    private readonly string _realRoot = PosixFs.RealPath(Path.GetFullPath(dir)) ?? Path.GetFullPath(dir);

    public string Description => _root;

    public bool Exists(string name) => Resolve(name) is { } p && File.Exists(p);

    public Stream Open(string name) =>
        Resolve(name) is { } p && File.Exists(p)
            ? new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan)
            : throw new ImageException("image_corrupt", $"{_root}: {name} is missing" +
                (Lexical(name) is { } l && File.Exists(l) ? " (it is a link that leads out of the directory)" : ""));

    /// <summary>The member's real path, or null when it does not exist or resolves outside the directory.</summary>
    private string? Resolve(string name) =>
        Lexical(name) is { } p && PosixFs.RealPath(p) is { } real && real.StartsWith(_realRoot + "/", StringComparison.Ordinal) ? real : null;

    private string? Lexical(string name) =>
        ArchiveSourceExtensions.NormaliseMember(name) is { } rel ? Path.Combine(_root, rel) : null;

    public void Dispose() { }
}

/// <summary>
/// A tar archive read in place: one pass records where each member's data lies, then members are read
/// as windows of the file, so a multi-gigabyte <c>docker save</c> is never extracted. A gzip-compressed
/// tar is first decompressed into a scratch file (a gzip stream cannot seek).
/// </summary>
internal sealed class TarArchiveSource : IArchiveSource
{
    private readonly string _path;
    private readonly string? _scratch;
    private readonly Dictionary<string, (long Offset, long Length)> _members;

    public string Description { get; }

    private TarArchiveSource(string description, string path, string? scratch, Dictionary<string, (long, long)> members)
    {
        Description = description;
        _path = path;
        _scratch = scratch;
        _members = members;
    }

    /// <param name="maxBytes">Cap on what a gzipped archive may decompress to (image limit MaxImageBytes).</param>
    public static async Task<TarArchiveSource> OpenAsync(string path, string scratchDir, long maxBytes, CancellationToken ct)
    {
        string? scratch = null;
        var tarPath = path;
        try
        {
            if (await IsGzipAsync(path, ct))
            {
                Directory.CreateDirectory(scratchDir);
                scratch = Path.Combine(scratchDir, Path.GetRandomFileName() + ".tar");
                await using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
                await using var src = new CountedReadStream(gzip, (total, _) =>
                {
                    if (total > maxBytes)
                        throw new ImageException("layer_rejected", $"{path} decompresses to more than {maxBytes} bytes (image limit MaxImageBytes)");
                });
                await using var dst = File.Create(scratch);
                await src.CopyToAsync(dst, ct);
                tarPath = scratch;
            }
            var members = await IndexAsync(tarPath, path, ct);
            return new TarArchiveSource(path, tarPath, scratch, members);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            Delete(scratch);
            throw new ImageException("image_corrupt", $"{path} is not a valid tar archive: {e.Message}", e);
        }
        catch
        {
            Delete(scratch);
            throw;
        }
    }

    private static async Task<bool> IsGzipAsync(string path, CancellationToken ct)
    {
        await using var f = File.OpenRead(path);
        var b = new byte[2];
        return await f.ReadAtLeastAsync(b, 2, false, ct) == 2 && b[0] == 0x1f && b[1] == 0x8b;
    }

    private static async Task<Dictionary<string, (long, long)>> IndexAsync(string tarPath, string display, CancellationToken ct)
    {
        var members = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        var links = new List<(string Name, string Target)>();
        await using var file = File.OpenRead(tarPath);
        await using var reader = new TarReader(file, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } e)
        {
            if (ArchiveSourceExtensions.NormaliseMember(e.Name) is not { } name) continue;
            switch (e.EntryType)
            {
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    if (e.DataOffset < 0) throw new ImageException("image_corrupt", $"{display}: cannot locate {name} in the archive");
                    members[name] = (e.DataOffset, e.Length);
                    break;
                case TarEntryType.HardLink:
                    links.Add((name, e.LinkName));
                    break;
                case TarEntryType.SymbolicLink:
                    // Old `docker save` links duplicate layers: "<id>/layer.tar -> ../<other>/layer.tar".
                    var dir = name.Contains('/') ? name[..name.LastIndexOf('/')] + "/" : "";
                    links.Add((name, e.LinkName.StartsWith('/') ? e.LinkName : dir + e.LinkName));
                    break;
            }
        }
        foreach (var (name, target) in links)
            if (ArchiveSourceExtensions.NormaliseMember(target) is { } t && members.TryGetValue(t, out var m))
                members[name] = m;
        return members;
    }

    public bool Exists(string name) => ArchiveSourceExtensions.NormaliseMember(name) is { } n && _members.ContainsKey(n);

    public Stream Open(string name)
    {
        if (ArchiveSourceExtensions.NormaliseMember(name) is not { } n || !_members.TryGetValue(n, out var m))
            throw new ImageException("image_corrupt", $"{Description}: {name} is missing from the archive");
        var f = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return new WindowStream(f, m.Offset, m.Length);
    }

    public void Dispose() => Delete(_scratch);

    private static void Delete(string? path)
    {
        if (path is null) return;
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A read-only window [offset, offset+length) of a file; owns the file stream.</summary>
internal sealed class WindowStream(FileStream inner, long offset, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int off, int count) => Read(buffer.AsSpan(off, count));

    public override int Read(Span<byte> buffer)
    {
        var max = (int)Math.Min(buffer.Length, length - _position);
        if (max <= 0) return 0;
        inner.Position = offset + _position;
        var n = inner.Read(buffer[..max]);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        var max = (int)Math.Min(buffer.Length, length - _position);
        if (max <= 0) return 0;
        inner.Position = offset + _position;
        var n = await inner.ReadAsync(buffer[..max], ct);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int off, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(off, count), ct).AsTask();

    public override void Flush() { }
    public override long Seek(long o, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int o, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}
