using Bough.Catalog;

namespace Bough.Engine.BootSnapshots;

/// <summary>
/// How one create from an image starts: restored from the boot snapshot of its shape (<see cref="From"/>), or
/// booted cold, and then, if this create holds its shape's publish right (<see cref="Publishes"/>), captured
/// into a new boot snapshot right after its agent answers. Dispose to give the publish right back.
/// </summary>
internal sealed class BootPlan : IDisposable
{
    private IDisposable? _publishRight;

    private BootPlan(SnapshotRecord? from, string? key, IDisposable? publishRight)
    {
        From = from;
        Key = key;
        _publishRight = publishRight;
    }

    /// <summary>The boot snapshot to restore from; null: boot cold.</summary>
    public SnapshotRecord? From { get; }

    /// <summary>The shape key (null when the caller asked for a cold boot: nothing is looked up or published).</summary>
    public string? Key { get; }

    /// <summary>True for the one create of a shape that captures the boot snapshot (single flight per key).</summary>
    public bool Publishes => Volatile.Read(ref _publishRight) is not null;

    /// <summary>A cold boot that neither uses nor makes a boot snapshot (<c>coldBoot: true</c>).</summary>
    public static BootPlan ColdOnly() => new(null, null, null);

    public static BootPlan Restore(SnapshotRecord from, string key) => new(from, key, null);

    /// <param name="publishRight">Held while this create may publish the shape's boot snapshot; null when another create does.</param>
    public static BootPlan Cold(string key, IDisposable? publishRight) => new(null, key, publishRight);

    public void Dispose() => Interlocked.Exchange(ref _publishRight, null)?.Dispose();
}
