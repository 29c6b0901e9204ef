namespace Bough.Engine.Lifecycle;

/// <summary>
/// Exclusive right to change one sandbox's lifecycle (create, delete, capture, pause,
/// resume, shutdown). Whatever runtime the holder finds under the lease stays the sandbox's
/// runtime until the lease ends (only lease holders replace runtimes), except that the VM
/// may die on its own. Released once, by disposal.
/// </summary>
internal sealed class LifecycleLease : IAsyncDisposable, IDisposable
{
    private readonly SandboxRegistry _registry;
    private readonly SandboxRegistry.LockEntry _entry;
    private int _released;

    internal LifecycleLease(SandboxRegistry registry, string id, SandboxOperation operation, SandboxRegistry.LockEntry entry)
    {
        _registry = registry;
        _entry = entry;
        Id = id;
        Operation = operation;
    }

    public string Id { get; }
    public SandboxOperation Operation { get; }
    public bool IsHeld => Volatile.Read(ref _released) == 0;

    /// <summary>Guards against using a lease for another sandbox or after it ended.</summary>
    public void EnsureHeld(string id)
    {
        if (!IsHeld || !string.Equals(id, Id, StringComparison.Ordinal))
            throw new InvalidOperationException($"no lifecycle lease held on sandbox {id}");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _registry.Release(Id, _entry);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
