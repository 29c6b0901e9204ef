using System.Collections.Concurrent;
using Bough.Engine.Boot;
using Bough.Snapshots;
using Bough.Vmm;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake <see cref="IVmLauncher"/>: no VM can run in these tests, so boot and restore hand out
/// <see cref="FakeVm"/>s, disks are empty files, and a test can park or fail the n-th boot or
/// restore (<see cref="Boot"/>, <see cref="Restore"/>) to order a race.
/// </summary>
internal sealed class FakeVmLauncher : IVmLauncher
{
    private readonly ConcurrentDictionary<string, FakeVm> _adoptable = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<FakeVm> _vms = new();
    private int _nextPid = 50_000;

    public CallPoint Boot { get; } = new();
    public CallPoint Restore { get; } = new();

    /// <summary>Every VM handed out (booted, restored or adopted), oldest first.</summary>
    public IReadOnlyList<FakeVm> Vms => [.. _vms];

    public IReadOnlyList<FakeVm> Alive => _vms.Where(v => v.IsAlive).ToList();

    /// <summary>The snapshots restores were started from, in call order.</summary>
    public ConcurrentQueue<SnapshotRef> RestoredFrom { get; } = new();

    public Task CreateDiskAsync(string backingFile, string overlayPath, CancellationToken ct) => EmptyFileAsync(overlayPath, ct);

    public Task CreateChildDiskAsync(SnapshotRef snapshot, string overlayPath, CancellationToken ct) => EmptyFileAsync(overlayPath, ct);

    public async Task<IVm> BootAsync(VmSpec spec, CancellationToken ct)
    {
        await Boot.PassAsync(ct);
        return Add(new FakeVm(Interlocked.Increment(ref _nextPid), spec, restored: false));
    }

    public async Task<IVm> RestoreAsync(VmSpec spec, SnapshotRef snapshot, CancellationToken ct)
    {
        RestoredFrom.Enqueue(snapshot);
        await Restore.PassAsync(ct);
        return Add(new FakeVm(Interlocked.Increment(ref _nextPid), spec, restored: true));
    }

    public Task<IVm?> AdoptAsync(string runtimeDir, CancellationToken ct) =>
        Task.FromResult<IVm?>(_adoptable.TryRemove(runtimeDir, out var vm) ? Add(vm) : null);

    /// <summary>Pretends a previous daemon left a live VM in <paramref name="runtimeDir"/>.</summary>
    public FakeVm LeaveRunning(string runtimeDir, string? activeDisk)
    {
        var spec = new VmSpec
        {
            Name = Path.GetFileName(runtimeDir), RuntimeDir = runtimeDir, KernelPath = "/nonexistent/vmlinuz",
            InitrdPath = "/nonexistent/initrd", KernelCmdline = "", DiskPath = activeDisk ?? "", Accel = "tcg",
        };
        var vm = new FakeVm(Interlocked.Increment(ref _nextPid), spec, restored: false) { ActiveDisk = activeDisk, Suspended = true };
        _adoptable[runtimeDir] = vm;
        return vm;
    }

    public void ReleaseAll()
    {
        Boot.ReleaseAll();
        Restore.ReleaseAll();
    }

    private FakeVm Add(FakeVm vm)
    {
        _vms.Enqueue(vm);
        return vm;
    }

    private static async Task EmptyFileAsync(string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, [], ct);
    }
}
