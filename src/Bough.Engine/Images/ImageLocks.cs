using System.Collections.Concurrent;

namespace Bough.Engine.Images;

/// <summary>
/// Per-name publish locks and the lease table. A name's lock guards only catalog decisions about that
/// name: a publish's digest re-check and row write, a delete's in-use check and row removal, and a
/// boot taking its lease. It is never held across building an image (layers, <c>/.bough</c>,
/// <c>mkfs.ext4</c>, <c>qemu-img</c>), so a create never waits for a re-publish of its image.
/// Never taken for two names at once, and never inside a sandbox's lifecycle lock
/// (<see cref="Lifecycle.LockOrder.ImageName"/>).
/// </summary>
internal sealed class ImageLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _leases = new(StringComparer.Ordinal);

    /// <summary>Holds <paramref name="name"/>'s lock until the result is disposed.</summary>
    public async Task<IDisposable> LockAsync(string name, CancellationToken ct)
    {
        var gate = _locks.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Held(gate);
    }

    /// <summary>Counts a lease on <paramref name="name"/>; call with the name's lock held, after checking the row still exists.</summary>
    public ImageLease Lease(BootImage image)
    {
        _leases.AddOrUpdate(image.Name, 1, (_, n) => n + 1);
        return new ImageLease(image, () => _leases.AddOrUpdate(image.Name, 0, (_, n) => n - 1));
    }

    /// <summary>Leases held on <paramref name="name"/> (boots that resolved it and have not yet written their sandbox row).</summary>
    public int LeaseCount(string name) => _leases.TryGetValue(name, out var n) ? n : 0;

    private sealed class Held(SemaphoreSlim gate) : IDisposable
    {
        private SemaphoreSlim? _gate = gate;
        public void Dispose() => Interlocked.Exchange(ref _gate, null)?.Release();
    }
}

/// <summary>A resolved image held against deletion until disposed.</summary>
internal sealed class ImageLease(BootImage image, Action? release) : IDisposable
{
    private Action? _release = release;
    public BootImage Image { get; } = image;
    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}
