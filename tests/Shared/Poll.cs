namespace Bough.TestSupport;

/// <summary>
/// Waiting for something another process does (a socket appears, a pid exits, a daemon answers):
/// check, sleep, check again until a deadline. One loop for all tests, so none of them spins
/// without a bound or sleeps a fixed time and hopes.
/// </summary>
public static class Poll
{
    private static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Checks <paramref name="condition"/> every <paramref name="interval"/> (default 50 ms) until it
    /// holds or <paramref name="timeout"/> passes. Returns the last answer, so a caller asserts on it
    /// with its own message. Exceptions from the condition propagate (use them to stop early).
    /// </summary>
    public static Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout, TimeSpan? interval = null,
        CancellationToken ct = default) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, interval, ct);

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, TimeSpan?, CancellationToken)"/>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null,
        CancellationToken ct = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
                return true;
            if (DateTime.UtcNow >= deadline)
                return false;
            await Task.Delay(interval ?? DefaultInterval, ct);
        }
    }
}
