using System.Security.Cryptography;
using System.Text;
using Bough.Images.Oci;

namespace Bough.Images.Tests.Oci;

public class BlobStoreTests
{
    private static string DigestOf(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    [Fact]
    public async Task Writes_verified_blob_into_place()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        var data = Encoding.UTF8.GetBytes("hello blob");
        var digest = DigestOf(data);
        Assert.Null(store.TryGet(digest));
        long seen = 0;
        var path = await store.WriteAsync(digest, new MemoryStream(data), data.Length, n => seen = n, CancellationToken.None);
        Assert.Equal(Path.Combine(tmp.Path, "blobs", "sha256", digest[7..]), path);
        Assert.Equal(path, store.TryGet(digest));
        Assert.Equal(data, await File.ReadAllBytesAsync(path));
        Assert.Equal(data.Length, seen);
        Assert.Empty(Directory.GetFiles(store.StagingDir));
    }

    [Fact]
    public async Task Mismatch_is_image_corrupt_and_leaves_nothing()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        var claimed = DigestOf("expected"u8.ToArray());
        var actual = "something else"u8.ToArray();
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            store.WriteAsync(claimed, new MemoryStream(actual), null, null, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
        Assert.Contains(claimed, e.Message);
        Assert.Contains(DigestOf(actual), e.Message);
        Assert.Null(store.TryGet(claimed));
        Assert.Empty(Directory.GetFiles(store.StagingDir));
        Assert.Empty(Directory.GetFiles(Path.Combine(store.Root, "sha256")));
    }

    [Fact]
    public async Task Too_many_bytes_is_image_corrupt()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        var data = new byte[1000];
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            store.WriteAsync(DigestOf(data), new MemoryStream(data), 10, null, CancellationToken.None));
        Assert.Equal("image_corrupt", e.Code);
        Assert.Empty(Directory.GetFiles(store.StagingDir));
    }

    [Fact]
    public async Task Cancellation_removes_staging_file()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        using var cts = new CancellationTokenSource();
        var slow = new SlowStream(cts);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            store.WriteAsync(DigestOf([1]), slow, null, null, cts.Token));
        Assert.Empty(Directory.GetFiles(store.StagingDir));
    }

    [Fact]
    public async Task Concurrent_writers_of_one_digest_are_safe()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        var digest = DigestOf(data);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            store.WriteAsync(digest, new MemoryStream(data), data.Length, null, CancellationToken.None))));
        Assert.Equal(data, await File.ReadAllBytesAsync(store.TryGet(digest)!));
        Assert.Empty(Directory.GetFiles(store.StagingDir));
    }

    [Fact]
    public async Task Import_file_and_add_unknown_digest()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(Path.Combine(tmp.Path, "data"));
        var file = Path.Combine(tmp.Path, "x.bin");
        await File.WriteAllTextAsync(file, "payload");
        var digest = DigestOf(File.ReadAllBytes(file));
        Assert.Equal(store.PathFor(digest), await store.ImportFileAsync(digest, file, 7, CancellationToken.None));
        var bad = await Assert.ThrowsAsync<ImageException>(() => store.ImportFileAsync(DigestOf([9]), file, null, CancellationToken.None));
        Assert.Equal("image_corrupt", bad.Code);

        var (d2, size, path) = await store.AddAsync(new MemoryStream("other"u8.ToArray()), CancellationToken.None);
        Assert.Equal(DigestOf("other"u8.ToArray()), d2);
        Assert.Equal(5, size);
        Assert.True(File.Exists(path));
    }

    [Fact]
    public async Task Clean_staging_removes_leftovers()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        Directory.CreateDirectory(store.StagingDir);
        await File.WriteAllTextAsync(Path.Combine(store.StagingDir, "abc123"), "partial");
        Directory.CreateDirectory(Path.Combine(store.StagingDir, "scratchdir"));
        Assert.Equal(2, store.CleanStaging());
        Assert.Empty(Directory.GetFileSystemEntries(store.StagingDir));
    }

    [Fact]
    public void Invalid_digest_is_absent_not_a_path()
    {
        using var tmp = new TempDir();
        var store = new BlobStore(tmp.Path);
        Assert.Null(store.TryGet("sha256:../../etc/passwd"));
        Assert.Throws<ImageException>(() => store.PathFor("sha256:../../x"));
    }

    /// <summary>Yields some bytes, then cancels the token mid-copy.</summary>
    private sealed class SlowStream(CancellationTokenSource cts) : Stream
    {
        private int _reads;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (++_reads == 3) cts.Cancel();
            cts.Token.ThrowIfCancellationRequested();
            buffer[offset] = 1;
            return 1;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
