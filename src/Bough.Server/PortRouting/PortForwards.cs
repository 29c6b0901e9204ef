using System.Collections.Concurrent;
using Bough.Contracts;
using Bough.Engine;

namespace Bough.Server.PortRouting;

/// <summary>
/// Which host loopback port reaches a guest port, remembered per VM process: the engine adds a QEMU
/// forward on each <see cref="ISandboxService.ForwardPortAsync"/> call, so one is asked for once per
/// (sandbox, port, pid). A new pid (resume, restore, a restarted daemon's adoption) has none of the old
/// forwards, so it asks again. Entries of sandboxes that turn out gone are dropped.
/// </summary>
internal sealed class PortForwards(ISandboxService sandboxes)
{
    private readonly ConcurrentDictionary<(string Id, int Port), Entry> _known = new();

    /// <summary>The host port for <paramref name="guestPort"/> of a running sandbox.</summary>
    /// <exception cref="BoughException"><c>sandbox_not_found</c> or <c>sandbox_not_running</c>.</exception>
    public async Task<int> ResolveAsync(string id, int guestPort, CancellationToken ct)
    {
        Sandbox sandbox;
        try
        {
            sandbox = await sandboxes.GetAsync(id, ct);
        }
        catch (BoughException ex) when (ex.Code == ErrorCodes.SandboxNotFound)
        {
            Forget(id);
            throw;
        }
        if (sandbox.State != SandboxStates.Running || sandbox.Pid is not { } pid)
            throw BoughException.NotRunning($"sandbox {id} is {sandbox.State}, not running");
        var key = (id, guestPort);
        var entry = _known.AddOrUpdate(key, k => NewEntry(k, pid), (k, old) => old.Usable(pid) ? old : NewEntry(k, pid));
        try
        {
            // The forward outlives this request (others share it), so it is not tied to this request's token.
            return await entry.HostPort.Value.WaitAsync(ct);
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            _known.TryRemove(new KeyValuePair<(string, int), Entry>(key, entry));
            throw;
        }
    }

    private Entry NewEntry((string Id, int Port) key, int pid) =>
        new(pid, new Lazy<Task<int>>(() => sandboxes.ForwardPortAsync(key.Id, key.Port, CancellationToken.None)));

    private void Forget(string id)
    {
        foreach (var key in _known.Keys.Where(k => k.Id == id))
            _known.TryRemove(key, out _);
    }

    private sealed record Entry(int Pid, Lazy<Task<int>> HostPort)
    {
        public bool Usable(int pid) => Pid == pid && !(HostPort.IsValueCreated && (HostPort.Value.IsFaulted || HostPort.Value.IsCanceled));
    }
}
