using System.Globalization;
using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

[Collection("vms")]
public class CaptureRestoreTests(GuestImageFixture fx, ITestOutputHelper output)
{
    /// <summary>A guest process that counts seconds into tmpfs (renamed into place, so a reader never sees a half write).</summary>
    internal const string StartCounter =
        "setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i > /dev/shm/counter.tmp; mv /dev/shm/counter.tmp /dev/shm/counter; sleep 1; done' >/dev/null 2>&1 &";

    internal static async Task<long> CounterAsync(TestVm vm) =>
        long.Parse(await vm.ShAsync("cat /dev/shm/counter"), CultureInfo.InvariantCulture);

    /// <summary>The counter moves on: read, wait, read again.</summary>
    internal static async Task<(long Before, long After)> AssertCountingAsync(TestVm vm)
    {
        long a = await CounterAsync(vm);
        await Task.Delay(3000);
        long b = await CounterAsync(vm);
        Assert.True(b > a, $"{vm.Name}: counter did not advance ({a} -> {b})");
        return (a, b);
    }

    [Fact]
    public async Task Captured_vm_keeps_running_and_children_carry_its_state_independently()
    {
        await using var lab = new Lab(fx, output);
        var source = await lab.BootAsync("src");
        await source.ShAsync(StartCounter);
        await source.ShAsync("echo on-disk > /root/before.txt; echo in-memory > /dev/shm/mem.txt");
        await Task.Delay(2000);
        long atCapture = await CounterAsync(source);

        var (snap, result) = await lab.CaptureAsync(source, "s1");
        Assert.True(result.PauseMs > 0);
        Assert.True(result.StoredPages > 0);
        Assert.Equal(result.BytesStored, new FileInfo(Path.Combine(snap.Dir, SnapshotFiles.Layer)).Length);
        foreach (string f in new[] { SnapshotFiles.Header, SnapshotFiles.Image, SnapshotFiles.DeviceState, SnapshotFiles.Disk, SnapshotFiles.Metadata })
            Assert.True(File.Exists(Path.Combine(snap.Dir, f)), f);
        Assert.Equal(256L << 20, new FileInfo(Path.Combine(snap.Dir, SnapshotFiles.Image)).Length);

        // The source keeps running, on its new overlay.
        Assert.True(await source.IsRunningAsync());
        await AssertCountingAsync(source);
        Assert.Equal("on-disk", await source.ShAsync("cat /root/before.txt"));
        await source.ShAsync("echo source > /root/after-source.txt; sync");

        // A child has the source's memory state (the counter process, tmpfs) and disk.
        var childA = await lab.RestoreAsync("ca", snap);
        var (a1, _) = await AssertCountingAsync(childA);
        Assert.True(a1 >= atCapture, $"child counter {a1} restarted (source was at {atCapture} before the capture)");
        Assert.Equal("on-disk", await childA.ShAsync("cat /root/before.txt"));
        Assert.Equal("in-memory", await childA.ShAsync("cat /dev/shm/mem.txt"));
        Assert.Equal("absent", await childA.ShAsync("[ -e /root/after-source.txt ] && echo present || echo absent"));
        await childA.ShAsync("echo a > /root/child-a.txt; echo a > /dev/shm/child-a; sync");
        Assert.Equal("absent", await source.ShAsync("[ -e /root/child-a.txt ] || [ -e /dev/shm/child-a ] && echo present || echo absent"));

        // Only two VMs at a time on this host: the second child replaces the source.
        await lab.StopAsync(source);
        var childB = await lab.RestoreAsync("cb", snap);
        await AssertCountingAsync(childB);
        Assert.Equal("in-memory", await childB.ShAsync("cat /dev/shm/mem.txt"));
        Assert.Equal("absent", await childB.ShAsync("[ -e /root/after-source.txt ] || [ -e /root/child-a.txt ] || [ -e /dev/shm/child-a ] && echo present || echo absent"));
        await childB.ShAsync("echo b > /root/child-b.txt; echo b > /dev/shm/child-b; sync");
        Assert.Equal("absent", await childA.ShAsync("[ -e /root/child-b.txt ] || [ -e /dev/shm/child-b ] && echo present || echo absent"));
        Assert.Equal("a", await childA.ShAsync("cat /root/child-a.txt"));
        await AssertCountingAsync(childA);
    }
}
