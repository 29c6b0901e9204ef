using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

[Collection("vms")]
public class ChainAndCompactionTests(GuestImageFixture fx, ITestOutputHelper output)
{
    private const string Sums = "md5sum /root/gen*.bin /dev/shm/gen*.bin";

    [Fact]
    public async Task Snapshot_of_a_child_carries_both_generations_and_its_compacted_copy_stands_alone()
    {
        await using var lab = new Lab(fx, output);

        // Generation 1: disk and memory content in the source.
        var source = await lab.BootAsync("g0");
        await source.ShAsync(CaptureRestoreTests.StartCounter);
        await source.ShAsync("dd if=/dev/urandom of=/root/gen1.bin bs=64k count=16 2>/dev/null; dd if=/dev/urandom of=/dev/shm/gen1.bin bs=1M count=2 2>/dev/null");
        string gen1 = await source.ShAsync(Sums);
        var (snap1, _) = await lab.CaptureAsync(source, "c1");
        await lab.StopAsync(source);

        // Generation 2: written in a child of snapshot 1, then that child is captured (parent = snapshot 1).
        var child = await lab.RestoreAsync("g1", snap1);
        Assert.Equal(gen1, await child.ShAsync(Sums));
        await child.ShAsync("dd if=/dev/urandom of=/root/gen2.bin bs=64k count=16 2>/dev/null; dd if=/dev/urandom of=/dev/shm/gen2.bin bs=1M count=2 2>/dev/null");
        string both = await child.ShAsync(Sums);
        // This capture holds at most 1 MiB of copied pages in memory: the rest goes through the spill file.
        var (snap2, r2) = await lab.CaptureAsync(child, "c2", new SnapshotCapturer(maxBufferedBytes: 1 << 20));
        Assert.True(r2.StoredPages > 256, "the spill path was not exercised");
        Assert.Equal("c1", r2.Metadata.ParentId);
        Assert.Equal(["c1"], r2.Metadata.AncestorIds);
        Assert.Contains("c1", r2.Metadata.LayerIds);
        Assert.True(r2.StoredPages < snap1Stored(snap1) / 2, "the child's snapshot should store only what the child wrote");
        await lab.StopAsync(child);

        // A grandchild restored from snapshot 2 has both generations, on disk and in memory.
        var grandchild = await lab.RestoreAsync("g2", snap2);
        Assert.Equal(both, await grandchild.ShAsync(Sums));
        await CaptureRestoreTests.AssertCountingAsync(grandchild);
        await lab.StopAsync(grandchild);

        // Compaction: one layer, a header that names no ancestor, a disk without a backing file.
        string staging = Path.Combine(lab.SnapshotsDir, ".staging-c2x");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await MemoryCompactor.CompactAsync(snap2, staging, CancellationToken.None);
        lab.Log($"compaction of c2: {sw.ElapsedMilliseconds} ms");
        var header = MemoryHeader.Read(Path.Combine(staging, SnapshotFiles.Header));
        Assert.Empty(header.AncestorLayers);
        var meta = SnapshotMetadata.Read(staging);
        Assert.Empty(meta.LayerIds);
        Assert.Equal("c2", meta.CompactedFrom);
        Assert.Equal(MemoryHeader.Read(Path.Combine(snap2.Dir, SnapshotFiles.Header)).CountNonZero(), meta.StoredPages);
        string info = await Lab.Output("qemu-img", "info", "--output=json", Path.Combine(staging, SnapshotFiles.Disk));
        Assert.DoesNotContain("backing-filename", info);
        SnapshotAssert.FilesEqual(Path.Combine(snap2.Dir, SnapshotFiles.Image), Path.Combine(staging, SnapshotFiles.Image));

        // Move it somewhere else and delete every original: snapshots, runtime dirs (disks, memory files).
        string elsewhere = Path.Combine(lab.Root, "moved", "c2x");
        Directory.CreateDirectory(Path.GetDirectoryName(elsewhere)!);
        await Lab.Run("cp", "-a", "--sparse=always", staging, elsewhere);
        Directory.Delete(lab.SnapshotsDir, recursive: true);
        foreach (string vm in new[] { "g0", "g1", "g2" }) Directory.Delete(Path.Combine(lab.Root, vm), recursive: true);
        var moved = new SnapshotRef("c2x", elsewhere);
        SnapshotAssert.ImageMatchesLayers(moved);

        var restored = await lab.RestoreAsync("g3", moved);
        Assert.Equal(both, await restored.ShAsync(Sums));
        await CaptureRestoreTests.AssertCountingAsync(restored);
    }

    private static long snap1Stored(SnapshotRef s) => SnapshotMetadata.Read(s.Dir).StoredPages;
}
