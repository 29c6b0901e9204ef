using Bough.Images.Concurrency;

namespace Bough.Images.Tests.Concurrency;

/// <summary>The one single-flight primitive behind "ensure kernel/base image" and per-name image operations.</summary>
public sealed class SingleFlightTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Callers_of_one_key_share_one_run_and_a_finished_run_is_not_cached()
    {
        var flights = new SingleFlight<string, Flight<int>>(StringComparer.Ordinal);
        var runs = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Func<CancellationToken, Task<int>> work = async ct => { var n = Interlocked.Increment(ref runs); await gate.Task.WaitAsync(ct); return n; };

        var a = flights.RunAsync("k", work, CancellationToken.None);
        var b = flights.RunAsync("k", work, CancellationToken.None);
        var other = flights.RunAsync("other", work, CancellationToken.None);
        gate.SetResult();
        Assert.Equal(await a.WaitAsync(Timeout), await b.WaitAsync(Timeout));
        await other.WaitAsync(Timeout);
        Assert.Equal(2, runs);

        await flights.RunAsync("k", work, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(3, runs);
        Assert.Empty(flights.Active());
    }

    [Fact]
    public async Task The_work_is_cancelled_only_when_the_last_waiter_gives_up()
    {
        var flights = new SingleFlight<string, Flight<int>>(StringComparer.Ordinal);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Func<CancellationToken, Task<int>> work = async ct =>
        {
            using var _ = ct.Register(() => cancelled.TrySetResult());
            await Task.Delay(System.Threading.Timeout.Infinite, ct);
            return 0;
        };
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var a = flights.RunAsync("k", work, first.Token);
        var b = flights.RunAsync("k", work, second.Token);

        await first.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a);
        await Task.Delay(100);
        Assert.False(cancelled.Task.IsCompleted);
        Assert.Single(flights.Active());

        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b);
        await cancelled.Task.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_background_caller_keeps_the_work_running_after_every_waiter_left()
    {
        var flights = new SingleFlight<string, Flight<int>>(StringComparer.Ordinal);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (flight, started) = flights.Join("k", background: true, () => new Flight<int>(async ct => { await gate.Task.WaitAsync(ct); return 7; }));
        Assert.True(started);

        using var cts = new CancellationTokenSource();
        var (joined, startedAgain) = flights.Join("k", background: false, () => throw new InvalidOperationException("must join"));
        Assert.Same(flight, joined);
        Assert.False(startedAgain);
        var wait = joined.WaitAsync(cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);

        gate.SetResult();
        Assert.Equal(7, await flight.Task.WaitAsync(Timeout));
        Assert.False(flight.WasCancelled);
    }
}
