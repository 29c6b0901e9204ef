using System.Collections.Concurrent;
using Bough.Engine.Boot;
using Bough.Engine.Capture;
using Bough.Snapshots;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake <see cref="ISnapshotCapturer"/>: capturing needs a QEMU process, which these tests do not
/// have. It writes a few files into the staging directory, as the real capturer's output would
/// be, and records what the engine asked for. A test can park the n-th capture
/// (<see cref="Capture"/>) or make it fail (<see cref="FailAfterDiskSwitch"/>).
/// </summary>
internal sealed class FakeCapturer : ISnapshotCapturer
{
    private readonly ConcurrentDictionary<int, bool> _switchFailures = new();
    private int _calls;

    public CallPoint Capture { get; } = new();
    public ConcurrentQueue<CaptureInput> Inputs { get; } = new();
    public ConcurrentQueue<(string ActiveDisk, SnapshotRef Published)> Repoints { get; } = new();

    /// <summary>
    /// Makes the <paramref name="nth"/> capture fail the way the real one does after
    /// <c>blockdev-snapshot-sync</c>: the VM already writes to <see cref="CaptureInput.NextDiskPath"/>.
    /// </summary>
    public void FailAfterDiskSwitch(int nth) => _switchFailures[nth] = true;

    public async Task<CaptureOutcome> CaptureAsync(IVm vm, CaptureInput input, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _calls);
        Inputs.Enqueue(input);
        await Capture.PassAsync(ct);
        if (_switchFailures.ContainsKey(n))
        {
            await File.WriteAllBytesAsync(input.NextDiskPath, [], ct);
            throw new SnapshotCaptureException("fake: saving the device state failed", diskSwitched: true, input.NextDiskPath);
        }
        Directory.CreateDirectory(input.StagingDir);
        await File.WriteAllBytesAsync(Path.Combine(input.StagingDir, SnapshotFiles.Disk), [], ct);
        await File.WriteAllBytesAsync(Path.Combine(input.StagingDir, SnapshotFiles.Layer), new byte[4096], ct);
        await File.WriteAllTextAsync(Path.Combine(input.StagingDir, SnapshotFiles.Metadata), "{}", ct);
        await File.WriteAllBytesAsync(input.NextDiskPath, [], ct);
        return new CaptureOutcome(PauseMs: 7, BytesStored: 4096);
    }

    public Task RepointActiveDiskAsync(IVm vm, string activeDiskPath, SnapshotRef published, CancellationToken ct)
    {
        Repoints.Enqueue((activeDiskPath, published));
        return Task.CompletedTask;
    }
}
