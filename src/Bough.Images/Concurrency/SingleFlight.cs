namespace Bough.Images.Concurrency;

/// <summary>
/// At most one <see cref="Flight"/> per key: a caller arriving while the key's flight is active
/// joins it instead of starting the same work again. Used for "ensure the guest kernel / base
/// image" (one key) and for image pulls, imports and builds (one flight per image name). A finished
/// flight leaves the table at once: results are not cached here, the caller's store is the cache.
/// </summary>
/// <typeparam name="TFlight"><see cref="Flight{T}"/>, or a subclass that carries progress for observers.</typeparam>
public sealed class SingleFlight<TKey, TFlight>
    where TKey : notnull
    where TFlight : Flight
{
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, TFlight> _flights;

    public SingleFlight(IEqualityComparer<TKey>? comparer = null) => _flights = new Dictionary<TKey, TFlight>(comparer);

    /// <summary>
    /// Joins the active flight for <paramref name="key"/>, or starts the one <paramref name="create"/>
    /// makes (a flight that is being cancelled is not joined: its callers gave up, this one did not).
    /// A waiting caller (<paramref name="background"/> false) must then call <see cref="Flight{T}.WaitAsync"/>.
    /// </summary>
    /// <returns>The flight, and whether this call started it.</returns>
    public (TFlight Flight, bool Started) Join(TKey key, bool background, Func<TFlight> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        lock (_gate)
        {
            if (_flights.TryGetValue(key, out var running) && running.IsActive && running.TryJoin(background))
                return (running, false);
            var flight = create();
            if (!flight.TryJoin(background)) throw new InvalidOperationException("a new flight cannot already be cancelled");
            _flights[key] = flight;
            flight.Start();
            _ = flight.Completion.ContinueWith(_ => Remove(key, flight), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return (flight, true);
        }
    }

    /// <summary>The flights still running (a snapshot), for observers such as "list images in progress".</summary>
    public IReadOnlyList<TFlight> Active()
    {
        lock (_gate) return _flights.Values.Where(f => !f.IsCompleted).ToList();
    }

    private void Remove(TKey key, TFlight flight)
    {
        lock (_gate)
        {
            if (_flights.TryGetValue(key, out var current) && ReferenceEquals(current, flight)) _flights.Remove(key);
        }
    }
}

/// <summary>The common case: wait for the one flight of a key, started if needed.</summary>
public static class SingleFlightExtensions
{
    /// <summary>Runs <paramref name="work"/>, or joins the run already going for <paramref name="key"/>, and waits for it.</summary>
    public static Task<T> RunAsync<TKey, T>(this SingleFlight<TKey, Flight<T>> flights, TKey key,
        Func<CancellationToken, Task<T>> work, CancellationToken ct) where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(flights);
        return flights.Join(key, background: false, () => new Flight<T>(work)).Flight.WaitAsync(ct);
    }
}
