using Bough.Images.Disk;
using Bough.Images.Oci;

namespace Bough.Images.Tests.Disk;

/// <summary>
/// The walk that sizes an image tree before mkfs: hostile trees hold symbolic links that loop or point
/// at the host (the tree is a real host directory), so links are counted, never followed.
/// </summary>
public sealed class TreeMeasureTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);
    private readonly TempDir _tmp = new();

    private string Root => _tmp.Path;

    public void Dispose() => _tmp.Dispose();

    private Task<DiskImage.TreeSize> MeasureAsync(long maxEntries = long.MaxValue, CancellationToken ct = default) =>
        Task.Run(() => DiskImage.Measure(Root, maxEntries, ct), ct).WaitAsync(Guard, CancellationToken.None);

    [Fact]
    public async Task A_symlink_loop_is_two_entries_not_an_endless_walk()
    {
        Directory.CreateDirectory(Path.Combine(Root, "a"));
        File.CreateSymbolicLink(Path.Combine(Root, "a", "l1"), "..");
        File.CreateSymbolicLink(Path.Combine(Root, "a", "l2"), "..");

        var tree = await MeasureAsync();

        Assert.Equal(3, tree.Entries);   // a, a/l1, a/l2
        Assert.Equal(4096, tree.Bytes);  // the directory's block; short link targets live in the inode
    }

    [Fact]
    public async Task A_link_to_the_hosts_etc_counts_as_one_entry_not_the_hosts_files()
    {
        File.CreateSymbolicLink(Path.Combine(Root, "x"), "/etc");
        File.CreateSymbolicLink(Path.Combine(Root, "passwd"), "/etc/passwd");

        var tree = await MeasureAsync();

        Assert.Equal(2, tree.Entries);
        Assert.Equal(0, tree.Bytes);
    }

    [Fact]
    public async Task Files_directories_and_long_link_targets_are_sized_in_blocks()
    {
        Directory.CreateDirectory(Path.Combine(Root, "d"));
        await File.WriteAllBytesAsync(Path.Combine(Root, "d", "f"), new byte[5000]);
        File.CreateSymbolicLink(Path.Combine(Root, "long"), new string('t', 61));

        var tree = await MeasureAsync();

        Assert.Equal(3, tree.Entries);
        Assert.Equal(4096 + 8192 + 4096, tree.Bytes);
    }

    [Fact]
    public async Task More_entries_than_the_cap_is_image_build_failed()
    {
        for (var i = 0; i < 120; i++) await File.WriteAllTextAsync(Path.Combine(Root, $"f{i}"), "");
        var e = await Assert.ThrowsAsync<ImageException>(() => MeasureAsync(maxEntries: 100));
        Assert.Equal("image_build_failed", e.Code);
        Assert.Contains("more than 100 entries", e.Message);
        Assert.Contains("MaxImageEntries", e.Message);
        Assert.Equal(120, (await MeasureAsync(maxEntries: 120)).Entries);
    }

    [Fact]
    public async Task A_cancelled_walk_stops()
    {
        for (var i = 0; i < 10; i++) await File.WriteAllTextAsync(Path.Combine(Root, $"f{i}"), "");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Run(() => DiskImage.Measure(Root, long.MaxValue, cts.Token)));
    }
}
