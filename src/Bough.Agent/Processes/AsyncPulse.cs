namespace Bough.Agent.Processes;

/// <summary>
/// "Something changed" for async waiters: take <see cref="Next"/> before checking the state, then
/// await it if there was nothing to do; a <see cref="Pulse"/> in between completes the task taken,
/// so no change is ever missed.
/// </summary>
internal sealed class AsyncPulse
{
    private TaskCompletionSource _current = New();

    public Task Next => Volatile.Read(ref _current).Task;

    public void Pulse() => Interlocked.Exchange(ref _current, New()).TrySetResult();

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
