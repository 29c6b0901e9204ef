using Bough.Catalog;

namespace Bough.Engine.Lifecycle;

/// <summary>
/// The legal state changes of a sandbox, in one table (Firecracker-style): every change of
/// <see cref="SandboxRuntime.Record"/>'s state goes through <see cref="Ensure"/>, so a race
/// that would, say, revive a dead sandbox fails loudly instead of writing a lie to the catalog.
/// </summary>
public static class SandboxTransitions
{
    private static readonly Dictionary<SandboxState, SandboxState[]> Allowed = new()
    {
        // A create or resume in progress ends running, or (resume failing) back in paused.
        [SandboxState.Starting] = [SandboxState.Running, SandboxState.Paused, SandboxState.Stopping, SandboxState.Dead],
        [SandboxState.Running] = [SandboxState.Stopping, SandboxState.Stopped, SandboxState.Dead, SandboxState.Paused],
        [SandboxState.Paused] = [SandboxState.Starting, SandboxState.Stopping],
        [SandboxState.Dead] = [SandboxState.Stopping],
        [SandboxState.Stopped] = [SandboxState.Stopping],
        // Stopping ends with the row gone.
        [SandboxState.Stopping] = [],
    };

    public static bool IsAllowed(SandboxState from, SandboxState to) =>
        from == to || (Allowed.TryGetValue(from, out var next) && next.Contains(to));

    /// <exception cref="InvalidOperationException">The change is not in the table.</exception>
    public static void Ensure(string id, SandboxState from, SandboxState to)
    {
        if (!IsAllowed(from, to))
            throw new InvalidOperationException($"sandbox {id}: illegal state change {from.ToName()} -> {to.ToName()}");
    }
}
