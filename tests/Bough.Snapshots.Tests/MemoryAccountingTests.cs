using Bough.Snapshots.Tracking;
using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

[Collection("vms")]
public class MemoryAccountingTests(GuestImageFixture fx, ITestOutputHelper output)
{
    private const long PagesPerMiB = 256;

    [Fact]
    public async Task Stored_pages_follow_dirtied_memory_zero_pages_are_not_stored_and_unchanged_pages_dedup_against_the_parent()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("dirty");

        var (s1, first) = await lab.CaptureAsync(vm, "d1");
        var (s2, idle) = await lab.CaptureAsync(vm, "d2");
        await vm.ShAsync("dd if=/dev/urandom of=/dev/shm/small bs=1M count=4 2>/dev/null");
        var (s3, small) = await lab.CaptureAsync(vm, "d3");
        await vm.ShAsync("dd if=/dev/urandom of=/dev/shm/large bs=1M count=64 2>/dev/null");
        var (s4, large) = await lab.CaptureAsync(vm, "d4");
        await vm.ShAsync("dd if=/dev/zero of=/dev/shm/zeros bs=1M count=32 2>/dev/null");
        string sums = await vm.ShAsync("md5sum /dev/shm/small /dev/shm/large /dev/shm/zeros");
        var (s5, zeros) = await lab.CaptureAsync(vm, "d5");
        Assert.Equal("ok", await vm.ShAsync("echo ok"));

        // A fresh boot's first snapshot stores what the guest wrote since boot, nothing else.
        Assert.True(first.StoredPages > 0);
        Assert.Equal(first.ChangedPages, first.StoredPages + first.ZeroPages);
        Assert.Equal(0, first.DedupedPages);

        // With written-page tracking the next capture copies only what the guest wrote since (an idle guest still writes
        // a little: timers, the agent), over the first; every copied page is stored, zero, or equal to the parent's.
        Assert.Equal(CaptureMethods.FullScan, first.Tracking);
        Assert.Equal(CaptureMethods.WrittenPages, idle.Tracking);
        Assert.True(idle.ChangedPages < first.ChangedPages / 4, $"idle capture copied {idle.ChangedPages} pages (first: {first.ChangedPages})");
        Assert.True(idle.StoredPages < first.StoredPages / 10, $"idle snapshot stored {idle.StoredPages} pages (first: {first.StoredPages})");
        Assert.Equal(idle.ChangedPages, idle.StoredPages + idle.ZeroPages + idle.DedupedPages);

        // Random data is stored page for page; more dirtied memory, more stored pages.
        Assert.True(small.StoredPages >= 4 * PagesPerMiB, $"4 MiB dirtied, {small.StoredPages} pages stored");
        // Besides the file, the guest touches a few MiB (page cache, dd's buffers, agent): measured 5 to 6 MiB in all.
        Assert.True(small.StoredPages < 16 * PagesPerMiB, $"4 MiB dirtied, {small.StoredPages} pages stored");
        Assert.True(large.StoredPages >= 64 * PagesPerMiB, $"64 MiB dirtied, {large.StoredPages} pages stored");
        Assert.True(large.StoredPages > 4 * small.StoredPages, $"64 MiB: {large.StoredPages} pages, 4 MiB: {small.StoredPages} pages");
        Assert.True(large.PauseMs >= 0 && small.PauseMs >= 0);

        // 32 MiB of zeros: counted as zero pages, not stored.
        Assert.True(zeros.StoredPages < 8 * PagesPerMiB, $"32 MiB of zeros stored {zeros.StoredPages} pages");
        Assert.True(zeros.ZeroPages >= large.ZeroPages + 16 * PagesPerMiB, $"zero pages {large.ZeroPages} -> {zeros.ZeroPages}");

        foreach (var (snap, r) in new[] { (s1, first), (s2, idle), (s3, small), (s4, large), (s5, zeros) })
        {
            Assert.Equal(r.BytesStored, new FileInfo(Path.Combine(snap.Dir, SnapshotFiles.Layer)).Length);
            Assert.Equal(r.StoredPages, SnapshotMetadata.Read(snap.Dir).StoredPages);
        }

        // The last header reaches back into ancestors' layers, and those layers rebuild memory.img exactly.
        var header = MemoryHeader.Read(Path.Combine(s5.Dir, SnapshotFiles.Header));
        Assert.Contains("d1", header.AncestorLayers);
        Assert.Contains("d4", header.AncestorLayers);
        Assert.Equal(zeros.Metadata.NonZeroPages, header.CountNonZero());
        SnapshotAssert.ImageMatchesLayers(s5);
        SnapshotAssert.ImageMatchesLayers(s3);
        // The disk chain of the last snapshot runs through published snapshots only, never the VM's runtime dir.
        string chain = await Lab.Output("qemu-img", "info", "--backing-chain", "-U", Path.Combine(s5.Dir, SnapshotFiles.Disk));
        lab.Log(chain);
        Assert.DoesNotContain(vm.Dir + "/", chain);
        foreach (string id in new[] { "d1", "d2", "d3", "d4" })
            Assert.Contains(Path.Combine(lab.SnapshotsDir, id, SnapshotFiles.Disk), chain);
        // With the source gone (runtime dir, overlays, memory file deleted), the fifth snapshot still restores.
        await lab.StopAsync(vm);
        Directory.Delete(vm.Dir, recursive: true);
        var child = await lab.RestoreAsync("dirty-child", s5);
        Assert.Equal(sums, await child.ShAsync("md5sum /dev/shm/small /dev/shm/large /dev/shm/zeros"));
        await child.ShAsync("echo disk-ok > /root/x; sync");
        lab.Log($"pause: first {first.PauseMs} ms, idle {idle.PauseMs}, +4 MiB {small.PauseMs}, +64 MiB {large.PauseMs}, +32 MiB zeros {zeros.PauseMs}");
    }

    /// <summary>
    /// A restored VM's private set starts empty, so its pause and its snapshot scale with what it wrote
    /// since the restore (a freshly booted VM's first capture includes everything since boot).
    /// </summary>
    [Fact]
    public async Task A_restored_vms_capture_scales_with_what_it_wrote_since_the_restore()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("pbase");
        var (baseSnap, _) = await lab.CaptureAsync(vm, "pbase");
        await lab.StopAsync(vm);

        var results = new List<(int MiB, CaptureResult R)>();
        foreach (int mib in new[] { 4, 64 })
        {
            var child = await lab.RestoreAsync($"p{mib}", baseSnap);
            await child.ShAsync($"dd if=/dev/urandom of=/dev/shm/fill bs=1M count={mib} 2>/dev/null");
            var (_, r) = await lab.CaptureAsync(child, $"p{mib}");
            results.Add((mib, r));
            Assert.True(r.StoredPages >= mib * PagesPerMiB);
            Assert.True(r.ChangedPages < (mib + 24) * PagesPerMiB, $"{mib} MiB written, {r.ChangedPages} pages changed");
            await lab.StopAsync(child);
        }
        var (small, large) = (results[0].R, results[1].R);
        Assert.True(large.ChangedPages > 3 * small.ChangedPages);
        lab.Log($"restored VM: +4 MiB -> pause {small.PauseMs} ms, {small.ChangedPages} changed, {small.BytesStored >> 10} KiB stored; " +
                $"+64 MiB -> pause {large.PauseMs} ms, {large.ChangedPages} changed, {large.BytesStored >> 10} KiB stored");
    }
}

internal static class SnapshotAssert
{
    /// <summary>memory.img is exactly what the header and the layers say.</summary>
    public static void ImageMatchesLayers(SnapshotRef snap)
    {
        var header = MemoryHeader.Read(Path.Combine(snap.Dir, SnapshotFiles.Header));
        string rebuilt = Path.Combine(Path.GetTempPath(), $"bough-rebuilt-{Guid.NewGuid():N}.img");
        try
        {
            MemoryImage.BuildFromLayers(snap, header, rebuilt);
            FilesEqual(Path.Combine(snap.Dir, SnapshotFiles.Image), rebuilt);
        }
        finally
        {
            File.Delete(rebuilt);
        }
    }

    public static void FilesEqual(string a, string b)
    {
        using var fa = File.OpenRead(a);
        using var fb = File.OpenRead(b);
        Assert.Equal(fa.Length, fb.Length);
        var ba = new byte[1 << 20];
        var bb = new byte[1 << 20];
        for (long pos = 0; pos < fa.Length; pos += ba.Length)
        {
            fa.ReadExactly(ba, 0, (int)Math.Min(ba.Length, fa.Length - pos));
            fb.ReadExactly(bb, 0, (int)Math.Min(bb.Length, fb.Length - pos));
            if (!ba.AsSpan().SequenceEqual(bb)) Assert.Fail($"{a} and {b} differ in the MiB at {pos}");
        }
    }
}
