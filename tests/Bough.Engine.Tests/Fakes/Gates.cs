using System.Collections.Concurrent;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A point a fake call stops at until the test lets it go (or its token is cancelled). Tests
/// order races with these instead of sleeping: await <see cref="Entered"/> to know the call is
/// parked, then <see cref="Release"/> it.
/// </summary>
internal sealed class Gate
{
    private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a call reached the gate.</summary>
    public Task Entered => _entered.Task;

    public void Release() => _released.TrySetResult();

    /// <summary>Parks the caller until released; a cancelled token ends the wait with <see cref="OperationCanceledException"/>.</summary>
    public async Task PassAsync(CancellationToken ct)
    {
        _entered.TrySetResult();
        await _released.Task.WaitAsync(ct);
    }
}

/// <summary>
/// One kind of fake call (boot, restore, connect, capture): counts calls and lets a test park
/// the n-th call at a <see cref="Gate"/> or make it fail.
/// </summary>
internal sealed class CallPoint
{
    private readonly ConcurrentDictionary<int, Gate> _holds = new();
    private readonly ConcurrentDictionary<int, Func<Exception>> _failures = new();
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    /// <summary>The gate the <paramref name="nth"/> call (1-based) will stop at.</summary>
    public Gate Hold(int nth) => _holds.GetOrAdd(nth, _ => new Gate());

    /// <summary>Makes the <paramref name="nth"/> call (1-based) throw what <paramref name="error"/> makes.</summary>
    public void Fail(int nth, Func<Exception> error) => _failures[nth] = error;

    /// <summary>Counts the call, waits at its gate if it has one, then throws if it was told to.</summary>
    public async Task PassAsync(CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _calls);
        if (_holds.TryGetValue(n, out var gate)) await gate.PassAsync(ct);
        if (_failures.TryGetValue(n, out var error)) throw error();
    }

    /// <summary>Lets every parked call go (harness disposal, so nothing stays blocked).</summary>
    public void ReleaseAll()
    {
        foreach (var gate in _holds.Values) gate.Release();
    }
}

/// <summary>A counter a test can await ("when at least n configures happened").</summary>
internal sealed class CountSignal
{
    private readonly Lock _gate = new();
    private readonly List<(int Target, TaskCompletionSource Done)> _waiters = [];
    private int _count;

    public int Count
    {
        get { lock (_gate) return _count; }
    }

    public void Increment()
    {
        List<TaskCompletionSource> done;
        lock (_gate)
        {
            _count++;
            done = _waiters.Where(w => w.Target <= _count).Select(w => w.Done).ToList();
            _waiters.RemoveAll(w => w.Target <= _count);
        }
        foreach (var d in done) d.TrySetResult();
    }

    public Task WhenAtLeast(int target)
    {
        lock (_gate)
        {
            if (_count >= target) return Task.CompletedTask;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((target, tcs));
            return tcs.Task;
        }
    }
}
