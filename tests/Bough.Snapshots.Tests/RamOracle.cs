using System.Security.Cryptography;

namespace Bough.Snapshots.Tests;

/// <summary>
/// The ground truth of a capture: every byte of the VM's RAM, read from <c>/proc/PID/mem</c> while the VM is stopped
/// inside the capture's stop window (after the pages were copied, before the VM runs again), compared with what the
/// snapshot stores (its memory.img, and the image rebuilt from its header and layers). A capture that missed a written
/// page, or layered over the wrong base, differs.
/// </summary>
internal sealed class RamOracle
{
    private const int PageSize = GuestRamMapping.PageSize;
    private byte[]? _ram;

    /// <summary>Pages QEMU held privately when the RAM was read (what a full scan would have copied).</summary>
    public long PrivatePages { get; private set; }

    /// <summary>
    /// Arms <paramref name="capturer"/> to record the RAM of <paramref name="vm"/> in its next stop window, and to run
    /// <paramref name="beforeStop"/> after the pre-copy, before the VM stops (its writes must reach the snapshot).
    /// </summary>
    public void Watch(SnapshotCapturer capturer, TestVm vm, Func<Task>? beforeStop = null)
    {
        _ram = null;
        capturer.StepHook = step =>
        {
            // The hook is synchronous; the guest work is not (and must not wait on the test's context).
            if (step == "pre-copied" && beforeStop is not null) Task.Run(beforeStop).GetAwaiter().GetResult();
            if (step != "pages-copied") return;
            var mapping = GuestRamMapping.Find(vm.Vm.Pid, vm.MemoryFile);
            PrivatePages = mapping.ChangedPages().Count;
            var ram = new byte[mapping.Length];
            using var mem = mapping.OpenMemory();
            foreach (var s in mapping.Segments)
                GuestRamMapping.ReadExactly(mem, ram.AsSpan((int)s.FileOffset, (int)s.Length), (long)s.Start, "guest RAM");
            _ram = ram;
        };
    }

    /// <summary>The snapshot holds exactly the RAM recorded in its window: memory.img and the layers both.</summary>
    public void AssertHolds(SnapshotRef snap)
    {
        var ram = _ram ?? throw new InvalidOperationException("no RAM was recorded (the capture did not reach its window)");
        AssertSame(ram, Path.Combine(snap.Dir, SnapshotFiles.Image), snap.Id + "/memory.img");
        string rebuilt = Path.Combine(Path.GetDirectoryName(snap.Dir)!, $".rebuilt-{snap.Id}");
        try
        {
            MemoryImage.BuildFromLayers(snap, MemoryHeader.Read(Path.Combine(snap.Dir, SnapshotFiles.Header)), rebuilt);
            AssertSame(ram, rebuilt, snap.Id + " rebuilt from its layers");
        }
        finally
        {
            File.Delete(rebuilt);
        }
    }

    private static void AssertSame(byte[] ram, string file, string what)
    {
        using var fs = File.OpenHandle(file);
        Assert.Equal(ram.LongLength, RandomAccess.GetLength(fs));
        var buffer = new byte[1 << 20];
        var differing = new List<long>();
        for (long pos = 0; pos < ram.LongLength; pos += buffer.Length)
        {
            int n = RandomAccess.Read(fs, buffer, pos);
            Assert.Equal(buffer.Length, n);
            if (buffer.AsSpan().SequenceEqual(ram.AsSpan((int)pos, n))) continue;
            for (int p = 0; p < n; p += PageSize)
                if (!buffer.AsSpan(p, PageSize).SequenceEqual(ram.AsSpan((int)pos + p, PageSize)))
                    differing.Add((pos + p) / PageSize);
        }
        Assert.True(differing.Count == 0,
            $"{what} differs from the VM's RAM in {differing.Count} pages (first: {string.Join(", ", differing.Take(10))})");
    }

    /// <summary>SHA-256 of a guest file, computed in the guest.</summary>
    public static async Task<string> GuestHashAsync(TestVm vm, string path) =>
        (await vm.ShAsync($"sha256sum {path}")).Split(' ')[0];

    /// <summary>Writes <paramref name="mib"/> MiB of random bytes to a guest file (tmpfs: guest RAM) and returns its hash.</summary>
    public static async Task<string> WriteRandomAsync(TestVm vm, string path, int mib)
    {
        await vm.ShAsync($"head -c {mib << 20} /dev/urandom > {path}");
        return await GuestHashAsync(vm, path);
    }

    /// <summary>A fresh random token, to tell apart contents written at different moments.</summary>
    public static string Token() => Convert.ToHexString(RandomNumberGenerator.GetBytes(8));
}
