using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Network;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Boot;

/// <summary>
/// Each running VM's unprivileged uid together with the firewall rules keyed by it, held for exactly as long as that
/// QEMU lives. A uid is taken and its egress rules installed before QEMU starts (a uid of the range without rules
/// sends nothing, so a VM is never let out before its policy is in force); when the QEMU is gone its rules are removed
/// and only then is the uid free for another VM. The range itself is claimed host-wide (a lock file under
/// <see cref="VmJailOptions.RangeLockDir"/>) so that a second daemon on the same range refuses to start instead of handing out the same
/// uids and rebuilding the same firewall table.
/// </summary>
internal sealed class VmUids(VmSpecFactory specs, IEgressFirewall firewall, ILogger<VmUids> log) : IDisposable
{
    private readonly VmUidAllocator _allocator = new(specs.Jail);
    private FileStream? _rangeLock;
    private volatile bool _closed;

    /// <summary>How many uids are held (diagnostics, tests).</summary>
    public int InUse => _allocator.InUse;

    /// <summary>The uids held by <paramref name="sandboxId"/> (tests).</summary>
    public IReadOnlyList<int> HeldBy(string sandboxId) => _allocator.HeldBy(sandboxId);

    /// <summary>A fresh uid for a new VM of <paramref name="row"/>'s sandbox, its egress rules installed.</summary>
    /// <exception cref="BoughException">No uid is free (capacity) or the firewall refused the rules.</exception>
    public async Task<int> TakeAsync(SandboxRecord row, CancellationToken ct)
    {
        int uid;
        try { uid = _allocator.Allocate(row.Id); }
        catch (InvalidOperationException ex) { throw new BoughException(ErrorCodes.CapacityExceeded, ex.Message, ex); }
        try
        {
            await firewall.ApplyAsync(row.Id, uid, PolicyOf(row), ct);
            return uid;
        }
        catch
        {
            _allocator.Release(row.Id, uid);
            throw;
        }
    }

    /// <summary>Releases a uid whose VM never started.</summary>
    public Task ReleaseAsync(string sandboxId, int uid) => RemoveThenReleaseAsync(sandboxId, uid);

    /// <summary>Releases <paramref name="uid"/> (rules first) once <paramref name="vm"/> has exited.</summary>
    public void ReleaseWhenGone(string sandboxId, int uid, IVm vm) =>
        _ = vm.Exited.ContinueWith(_ => RemoveThenReleaseAsync(sandboxId, uid), CancellationToken.None,
            TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();

    /// <summary>Start-up recovery: the adopted VM keeps its uid, and nothing else may get it until that VM is gone.</summary>
    /// <returns>False when the row has no uid (a VM started before jails) or it is outside the range or taken.</returns>
    public bool Adopt(SandboxRecord row, IVm vm)
    {
        if (row.VmUid is not { } uid)
        {
            log.LogWarning("sandbox {Id} runs a VM started without a jail (no uid recorded); it stays unconfined until it is restarted", row.Id);
            return false;
        }
        if (!_allocator.Claim(row.Id, uid))
        {
            log.LogError("sandbox {Id}: its VM uid {Uid} is outside the configured range or already taken", row.Id, uid);
            return false;
        }
        ReleaseWhenGone(row.Id, uid, vm);
        return true;
    }

    /// <summary>
    /// Start-up recovery, after adoption: the installed rules become exactly those of the adopted VMs (a crash's
    /// leftovers dropped). Fails the start when the firewall cannot be set up: VMs must not run uncontained.
    /// </summary>
    /// <exception cref="EngineStartException">Another daemon holds the uid range, or the firewall cannot be set up.</exception>
    public async Task ReconcileAsync(IEnumerable<SandboxRecord> adopted, CancellationToken ct)
    {
        ClaimRange();
        try
        {
            await firewall.ReconcileAsync(adopted.Where(r => r.VmUid is not null)
                .Select(r => (r.Id, r.VmUid!.Value, PolicyOf(r))).ToList(), ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            throw new EngineStartException($"the host firewall that contains sandbox networks could not be set up: {ex.Message} " +
                                           "(it needs root and nftables; see `bough doctor`)", ex);
        }
    }

    /// <summary>Takes the host-wide lock on this daemon's uid range (idempotent; released when the daemon exits).</summary>
    /// <exception cref="EngineStartException">Another daemon on this host holds the same range.</exception>
    public void ClaimRange()
    {
        if (_rangeLock is not null) return;
        var jail = specs.Jail;
        Directory.CreateDirectory(jail.RangeLockDir);
        var path = Path.Combine(jail.RangeLockDir, $"vm-uids-{jail.UidBase}.lock");
        try
        {
            // FileShare.None is an exclusive flock on Linux, dropped by the kernel when the process dies.
            _rangeLock = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new EngineStartException(
                $"another Bough daemon on this host runs VMs with uids {jail.UidBase}..{jail.UidBase + jail.UidCount - 1} ({path} is locked); " +
                "give this one a range of its own (--vm-uid-base)", ex);
        }
    }

    /// <summary>
    /// Graceful shutdown, once every VM is stopped: the daemon's firewall table goes (a later release of a uid no
    /// longer touches the firewall). A daemon that leaves VMs running for the next one keeps its rules instead.
    /// </summary>
    public async Task CloseAsync()
    {
        _closed = true;
        try { await firewall.RemoveAllAsync(CancellationToken.None); }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            log.LogWarning(ex, "removing the daemon's firewall rules at shutdown failed (the next start rebuilds them)");
        }
    }

    public void Dispose() => _rangeLock?.Dispose();

    private static EgressPolicy PolicyOf(SandboxRecord row) => new(row.Internet, row.Network);

    private async Task RemoveThenReleaseAsync(string sandboxId, int uid)
    {
        if (_closed) return;
        try { await firewall.RemoveAsync(sandboxId, uid, CancellationToken.None); }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The uid stays allocated: reusing it would hand a new VM a stale policy until its own apply.
            log.LogError(ex, "removing the egress rules of sandbox {Id} (uid {Uid}) failed; the uid stays reserved", sandboxId, uid);
            return;
        }
        _allocator.Release(sandboxId, uid);
    }
}
