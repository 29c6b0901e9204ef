using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Bough.AgentClient;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Capture;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.BootSnapshots;

/// <summary>
/// Every create from an image is a restore once its shape has a boot snapshot. The first create of a shape boots
/// cold and, between its agent answering and its identity being applied, is captured into the shape's boot
/// snapshot (kind <see cref="SnapshotKind.Boot"/>): at that point the guest holds nothing of that sandbox yet (no
/// hostname, env, clock or entropy of its own, no files, no command of its own run), so what others start from is the
/// image booted (and its agent warmed up) and nothing more. Later creates of the shape restore from it and get their
/// own identity, like any child.
/// </summary>
/// <remarks>
/// Publishing is single-flight per shape key: concurrent first creates all boot cold, one of them captures. It is
/// best effort: no free capture slot, a failed capture or a lost race costs the boot snapshot, never the create
/// (only the create's own cancellation ends it). The row is published by the capture and then made findable by
/// its key; a crash in between leaves a keyless boot snapshot, which is stale and collected. A boot snapshot that
/// fails to restore is retired (its key cleared) so the next create boots cold and publishes a fresh one.
/// </remarks>
internal sealed partial class BootSnapshotService(
    EngineOptions options, BootShapes shapes, SnapshotStore snapshots, CaptureSlots slots, CaptureOrchestrator capture,
    GuestIdentity identity, ILogger<BootSnapshotService> log)
{
    /// <summary>The busybox every image carries (injected under /.bough at publish), so the warm-up needs nothing of the image.</summary>
    private static readonly string[] WarmUpCommand = ["/.bough/bin/busybox", "true"];
    private static readonly TimeSpan WarmUpTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a first create waits for a capture slot before giving up on publishing (it never waits for long).</summary>
    private static readonly TimeSpan SlotWait = TimeSpan.FromMilliseconds(250);

    private readonly ConcurrentDictionary<string, byte> _publishing = new(StringComparer.Ordinal);

    /// <summary>Decides how a create of <paramref name="image"/> with this shape starts.</summary>
    public async Task<BootPlan> PlanAsync(IBootImageLease image, int vcpus, int memoryMiB, bool coldBoot, CancellationToken ct)
    {
        if (coldBoot || !options.BootSnapshots) return BootPlan.ColdOnly();
        var key = await shapes.KeyAsync(image.Name, image.DiskPath, vcpus, memoryMiB, ct);
        if (await snapshots.GetByBootKeyAsync(key, ct) is { Kind: SnapshotKind.Boot } snap) return BootPlan.Restore(snap, key);
        return ColdPlan(key);
    }

    /// <summary>A cold boot of shape <paramref name="key"/> that publishes its boot snapshot unless another create already does.</summary>
    public BootPlan ColdPlan(string key) =>
        BootPlan.Cold(key, _publishing.TryAdd(key, 0) ? new PublishRight(_publishing, key) : null);

    /// <summary>
    /// Captures the sandbox being created into the boot snapshot of <paramref name="key"/>. Called after its agent
    /// answered and before its identity is applied; the caller holds its lifecycle lease.
    /// </summary>
    /// <param name="image">The image's exec defaults, which the warm-up applies (they are every sandbox's of the image).</param>
    /// <exception cref="OperationCanceledException">Only when <paramref name="ct"/> was cancelled (the create ends).</exception>
    public async Task TryPublishAsync(LifecycleLease lease, SandboxRuntime rt, ImageConfig image, string key, CancellationToken ct)
    {
        try
        {
            await WarmUpAsync(rt, image, ct);
            using var quick = CancellationTokenSource.CreateLinkedTokenSource(ct);
            quick.CancelAfter(SlotWait);
            CaptureSlotLease slot;
            try { slot = await slots.AcquireAsync(quick.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                log.LogInformation("no capture slot free: sandbox {Id} boots without publishing a boot snapshot", rt.Id);
                return;
            }
            using (slot)
            {
                var record = rt.Record;
                var snap = await capture.CaptureAsync(lease, rt, TagFor(record), SnapshotKind.Boot, keep: true, ct);
                // Not cancellable: a published row without its key would only wait for collection.
                if (!await snapshots.SetBootKeyAsync(snap.Id, key, CancellationToken.None))
                    log.LogWarning("boot snapshot {Snapshot} was published but its shape already has one; it will be collected", snap.Id);
                else
                    log.LogInformation("published boot snapshot {Snapshot} of {Image} ({Vcpus} vCPU, {Memory} MiB) from sandbox {Id}, {PauseMs} ms stopped",
                        snap.Id, record.Image, record.Vcpus, record.MemoryMiB, rt.Id, snap.PauseMs);
            }
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && ct.IsCancellationRequested) && ex is not OutOfMemoryException)
        {
            log.LogWarning(ex, "publishing a boot snapshot from sandbox {Id} failed; the sandbox goes on without it", rt.Id);
        }
    }

    /// <summary>
    /// Runs the agent's first-use paths once (a configure with what all sandboxes of the image share, and an exec),
    /// so that every sandbox restored from the snapshot finds them compiled: under TCG, the agent compiling them again
    /// in each restored guest doubled the time until it answered. Leaves nothing of a sandbox in the guest: no
    /// hostname, no sandbox env, and the command writes nothing. Best effort: a failure only costs the speed-up.
    /// </summary>
    private async Task WarmUpAsync(SandboxRuntime rt, ImageConfig image, CancellationToken ct)
    {
        if (rt.Agent is not { } agent) return;
        try
        {
            await identity.PrimeAsync(agent, image, ct);
            var spec = new ExecSpec { Argv = WarmUpCommand, Timeout = WarmUpTimeout };
            await foreach (var _ in agent.ExecAsync(spec, ct)) { }
        }
        catch (Exception ex) when (ex is AgentException or IOException or ObjectDisposedException)
        {
            log.LogInformation(ex, "warming the agent of {Id} before its boot snapshot failed; publishing it cold", rt.Id);
        }
    }

    /// <summary>
    /// Takes a boot snapshot that failed to restore out of use: its key is cleared, so the next create of its shape
    /// boots cold and publishes a fresh one, and the collector removes it once nothing needs it.
    /// </summary>
    public async Task RetireAsync(SnapshotRecord boot, Exception why)
    {
        log.LogWarning(why, "restoring from boot snapshot {Snapshot} failed; retiring it (creates of its shape boot cold until a new one is published)", boot.Id);
        await snapshots.SetBootKeyAsync(boot.Id, null, CancellationToken.None);
    }

    /// <summary>"boot.&lt;image&gt;.&lt;vcpus&gt;x&lt;MiB&gt;.&lt;random&gt;": says what it is in listings and the tree.</summary>
    internal static string TagFor(SandboxRecord r)
    {
        var image = NotTagSafe().Replace(r.Image, "-").Trim('-', '.');
        var suffix = $".{r.Vcpus}x{r.MemoryMiB}.{SandboxId.NewWithPrefix("")[..6]}";
        var room = 64 - "boot.".Length - suffix.Length;
        return "boot." + (image.Length > room ? image[..room] : image) + suffix;
    }

    [GeneratedRegex("[^A-Za-z0-9._-]+")]
    private static partial Regex NotTagSafe();

    private sealed class PublishRight(ConcurrentDictionary<string, byte> publishing, string key) : IDisposable
    {
        public void Dispose() => publishing.TryRemove(key, out _);
    }
}
