using System.Net;
using System.Security.Cryptography;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

[Collection("daemon")]
public sealed class FileTests(DaemonFixture f)
{
    private string Id => f.Primary.Id;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(50 * 1024 * 1024)]
    public async Task Binary_round_trip_preserves_every_byte(int size)
    {
        var data = RandomNumberGenerator.GetBytes(size);
        var path = $"/root/roundtrip/{size}/blob.bin";
        await f.Daemon.Client.UploadFileAsync(Id, path, new MemoryStream(data));

        using var back = new MemoryStream();
        await f.Daemon.Client.DownloadFileAsync(Id, path, back);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(data)), Convert.ToHexString(SHA256.HashData(back.ToArray())));

        // The guest sees the same bytes.
        var sum = await f.Daemon.Client.ExecAsync(Id, new ExecRequest { Cmd = ["sha256sum", path] });
        Assert.StartsWith(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant(), sum.Stdout);
    }

    [Fact]
    public async Task Listing_shows_names_types_sizes_and_modes()
    {
        await f.Daemon.Client.UploadFileAsync(Id, "/tmp/listme/a.txt", new MemoryStream("hello"u8.ToArray()));
        await f.Daemon.Client.ExecAsync(Id, new ExecRequest { Cmd = ["sh", "-c", "mkdir -p /tmp/listme/sub && chmod 0750 /tmp/listme/sub"] });
        var entries = await f.Daemon.Client.ListFilesAsync(Id, "/tmp/listme");
        var a = Assert.Single(entries, e => e.Name == "a.txt");
        Assert.Equal("file", a.Type);
        Assert.Equal(5, a.Size);
        var sub = Assert.Single(entries, e => e.Name == "sub");
        Assert.Equal("dir", sub.Type);
        Assert.Equal(0b111_101_000, sub.Mode & 0x1FF);
        Assert.True(a.Mtime > DateTimeOffset.UtcNow.AddMinutes(-10));
    }

    [Fact]
    public async Task Delete_removes_a_file()
    {
        await f.Daemon.Client.UploadFileAsync(Id, "/tmp/doomed.txt", new MemoryStream("x"u8.ToArray()));
        await f.Daemon.Client.DeleteFileAsync(Id, "/tmp/doomed.txt");
        var ex = await Assert.ThrowsAsync<BoughApiException>(() =>
            f.Daemon.Client.DownloadFileAsync(Id, "/tmp/doomed.txt", new MemoryStream()));
        Assert.Equal(404, ex.Status);
    }

    [Fact]
    public async Task Missing_file_is_404_with_a_problem_body()
    {
        using var r = await f.Daemon.Http.GetAsync($"/v1/sandboxes/{Id}/files?path=/nope/nothing");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var p = await Problems.ReadAsync(r);
        Assert.Equal(ErrorCodes.FileNotFound, p.Code);
    }

    [Fact]
    public async Task Relative_path_is_400()
    {
        using var r = await f.Daemon.Http.GetAsync($"/v1/sandboxes/{Id}/files?path=etc/passwd");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal(ErrorCodes.InvalidPath, (await Problems.ReadAsync(r)).Code);

        using var put = await f.Daemon.Http.PutAsync($"/v1/sandboxes/{Id}/files?path=relative.txt", new ByteArrayContent([1]));
        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
    }
}
