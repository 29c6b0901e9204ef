namespace Bough.Engine.Boot;

/// <summary>
/// Hands each VM its own unprivileged uid (QEMU's <c>-runas</c>, the key of its firewall rules): the lowest free one
/// in <see cref="VmJailOptions.UidBase"/> .. +<see cref="VmJailOptions.UidCount"/>, held from before its QEMU starts
/// until that QEMU is gone. A VM start always gets a fresh allocation, so an old VM's late release can never free
/// the uid a newer VM of the same sandbox runs as. In memory only; start-up recovery rebuilds it from the rows of
/// the VMs it adopts.
/// </summary>
internal sealed class VmUidAllocator(VmJailOptions options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, string> _owners = [];

    /// <summary>A free uid for a new VM of <paramref name="sandboxId"/>.</summary>
    /// <exception cref="InvalidOperationException">Every uid of the range is in use.</exception>
    public int Allocate(string sandboxId)
    {
        lock (_lock)
        {
            for (int i = 0; i < options.UidCount; i++)
            {
                int uid = options.UidBase + i;
                if (_owners.TryAdd(uid, sandboxId)) return uid;
            }
        }
        throw new InvalidOperationException(
            $"all {options.UidCount} VM uids from {options.UidBase} are in use; no more VMs can run on this host");
    }

    /// <summary>Recovery: marks the uid of an adopted VM as used. False when it is outside the range or already taken.</summary>
    public bool Claim(string sandboxId, int uid)
    {
        if (uid < options.UidBase || uid - options.UidBase >= options.UidCount) return false;
        lock (_lock) return _owners.TryAdd(uid, sandboxId) || _owners[uid] == sandboxId;
    }

    /// <summary>Frees <paramref name="uid"/> if <paramref name="sandboxId"/> holds it (idempotent).</summary>
    public void Release(string sandboxId, int uid)
    {
        lock (_lock)
        {
            if (_owners.TryGetValue(uid, out var owner) && owner == sandboxId) _owners.Remove(uid);
        }
    }

    /// <summary>Frees <paramref name="uid"/> once <paramref name="vm"/> has exited (a VM only detached keeps it).</summary>
    public void ReleaseWhenGone(string sandboxId, int uid, IVm vm) =>
        _ = vm.Exited.ContinueWith(_ => Release(sandboxId, uid), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>How many uids are held (diagnostics, tests).</summary>
    public int InUse
    {
        get { lock (_lock) return _owners.Count; }
    }

    /// <summary>The uids held by <paramref name="sandboxId"/>.</summary>
    public IReadOnlyList<int> HeldBy(string sandboxId)
    {
        lock (_lock) return _owners.Where(o => o.Value == sandboxId).Select(o => o.Key).ToList();
    }
}
