using System.Globalization;
using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Lifecycle;

/// <summary>
/// Admission control: a create, branch or resume that would push the guest memory of sandboxes
/// with a VM past <see cref="EngineOptions.MaxMemoryShare"/> of the host's RAM, or their number
/// past <see cref="EngineOptions.MaxSandboxes"/>, is refused up front with 503 capacity_exceeded
/// naming what is short, instead of overcommitting the host until the OOM killer picks a VM.
/// </summary>
/// <remarks>
/// What is committed is counted from the registry (every runtime starting, running or stopping
/// holds its VM's memory) plus the slots of tickets not yet attached to a runtime. A starter
/// registers its runtime first and then <see cref="AdmissionTicket.Attach"/>es one slot, so a
/// sandbox is always counted at least once (briefly twice, which only errs on the safe side).
/// Reserving is one short critical section (<see cref="LockOrder.Admission"/>), so parallel
/// requests cannot both squeeze into the last room. Guest memory is what the VMs may map; QEMU's
/// own overhead is what the share's headroom is for.
/// </remarks>
internal sealed class Admission(EngineOptions options, SandboxRegistry registry)
{
    private readonly Lock _gate = new();
    private readonly Lazy<long> _hostMiB = new(() => options.HostMemoryMiB ?? ReadMemTotalMiB());
    private int _pendingCount;
    private long _pendingMiB;

    /// <summary>The memory sandboxes may commit, in MiB.</summary>
    public long MemoryLimitMiB => (long)(_hostMiB.Value * options.MaxMemoryShare);

    /// <summary>Reserves room for <paramref name="count"/> VMs of <paramref name="memoryMiB"/> each; dispose the ticket to give back what was not attached.</summary>
    /// <param name="what">The operation, for the refusal ("create a sandbox", "start 3 children").</param>
    /// <exception cref="BoughException">capacity_exceeded (503), saying which limit and by how much.</exception>
    public AdmissionTicket Reserve(int count, int memoryMiB, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(memoryMiB);
        lock (_gate)
        {
            var (sandboxes, committedMiB) = CommittedLocked();
            var askedMiB = (long)count * memoryMiB;
            var limitMiB = MemoryLimitMiB;
            var shortages = new List<string>();
            if (sandboxes + count > options.MaxSandboxes)
                shortages.Add(string.Create(CultureInfo.InvariantCulture,
                    $"sandboxes: {sandboxes} have a VM and {count} more would pass the limit of {options.MaxSandboxes}"));
            if (committedMiB + askedMiB > limitMiB)
                shortages.Add(string.Create(CultureInfo.InvariantCulture,
                    $"guest memory: {committedMiB} MiB committed and {askedMiB} MiB more would pass {limitMiB} MiB " +
                    $"({options.MaxMemoryShare:0.##} of the host's {_hostMiB.Value} MiB); {Math.Max(0, limitMiB - committedMiB)} MiB are free"));
            if (shortages.Count > 0)
                throw new BoughException(ErrorCodes.CapacityExceeded,
                    $"cannot {what}: the host is full; " + string.Join("; ", shortages) + ". Delete or pause sandboxes to make room");
            _pendingCount += count;
            _pendingMiB += askedMiB;
            return new AdmissionTicket(this, count, memoryMiB);
        }
    }

    /// <summary>Sandboxes with a VM and their guest memory, as admission counts them now.</summary>
    public (int Sandboxes, long MemoryMiB) Committed()
    {
        lock (_gate) return CommittedLocked();
    }

    internal void Give(int slots, int memoryMiB)
    {
        lock (_gate)
        {
            _pendingCount -= slots;
            _pendingMiB -= (long)slots * memoryMiB;
        }
    }

    private (int Sandboxes, long MemoryMiB) CommittedLocked()
    {
        int n = _pendingCount;
        long mib = _pendingMiB;
        foreach (var rt in registry.Runtimes)
        {
            var r = rt.Record;
            if (r.State is SandboxState.Starting or SandboxState.Running or SandboxState.Stopping)
            {
                n++;
                mib += r.MemoryMiB;
            }
        }
        return (n, mib);
    }

    /// <summary>MemTotal of /proc/meminfo in MiB.</summary>
    private static long ReadMemTotalMiB()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (!line.StartsWith("MemTotal:", StringComparison.Ordinal)) continue;
            var kb = long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            return kb / 1024;
        }
        throw new InvalidOperationException("/proc/meminfo has no MemTotal line; set EngineOptions.HostMemoryMiB");
    }
}

/// <summary>
/// Room reserved for VMs about to start. <see cref="Attach"/> one slot per sandbox once its
/// runtime is in the registry (from then on the registry counts it); disposing gives back the rest.
/// </summary>
internal sealed class AdmissionTicket : IDisposable
{
    private readonly Admission _owner;
    private readonly int _memoryMiB;
    private readonly Lock _gate = new();
    private int _slots;

    internal AdmissionTicket(Admission owner, int slots, int memoryMiB)
    {
        _owner = owner;
        _slots = slots;
        _memoryMiB = memoryMiB;
    }

    /// <summary>One reserved sandbox now has its runtime registered.</summary>
    public void Attach()
    {
        lock (_gate)
        {
            if (_slots == 0) return;
            _slots--;
        }
        _owner.Give(1, _memoryMiB);
    }

    public void Dispose()
    {
        int rest;
        lock (_gate)
        {
            rest = _slots;
            _slots = 0;
        }
        if (rest > 0) _owner.Give(rest, _memoryMiB);
    }
}
