namespace Bough.Images.Concurrency;

/// <summary>
/// One run of some work, shared by every caller that joins it while it runs (see
/// <see cref="SingleFlight{TKey, TFlight}"/>). A caller either waits for it, and may give up with its
/// own token, or leaves it running in the background. When the last waiting caller gives up and
/// nobody asked for the background, the work is cancelled: nobody would see its result, and a
/// half-done pull or build should not keep the disk and network busy.
/// </summary>
/// <remarks>The non-generic part is what <see cref="SingleFlight{TKey, TFlight}"/> needs to manage flights of any result type.</remarks>
public abstract class Flight
{
    private protected readonly Lock Gate = new();
    private protected readonly CancellationTokenSource Cts;
    private int _waiters;
    private bool _background;

    /// <param name="stopping">Cancels the work too (the owner is shutting down).</param>
    private protected Flight(CancellationToken stopping) => Cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);

    /// <summary>When the flight started.</summary>
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Whether the work was cancelled (every waiter gave up, or the owner stopped). Safe after completion.</summary>
    public bool WasCancelled => Cts.IsCancellationRequested;

    /// <summary>Whether the work is over (successfully or not).</summary>
    public abstract bool IsCompleted { get; }

    /// <summary>Still running and not being cancelled: a new caller may join it.</summary>
    public bool IsActive => !IsCompleted && !Cts.IsCancellationRequested;

    /// <summary>Completes when the work is over, whatever its outcome; never faults.</summary>
    internal abstract Task Completion { get; }

    /// <summary>Starts the work; called once, by <see cref="SingleFlight{TKey, TFlight}"/>, right after creating the flight.</summary>
    internal abstract void Start();

    /// <summary>Adds a caller: a waiter, or (<paramref name="background"/>) one that lets the work run on without it.</summary>
    /// <returns>False when the flight is already being cancelled (start a new one instead).</returns>
    internal bool TryJoin(bool background)
    {
        lock (Gate)
        {
            if (Cts.IsCancellationRequested) return false;
            if (background) _background = true;
            else _waiters++;
            return true;
        }
    }

    /// <summary>A waiter stopped waiting before the end; the last one cancels the work unless it runs in the background.</summary>
    private protected void Leave()
    {
        lock (Gate)
        {
            if (--_waiters > 0 || _background || IsCompleted) return;
            Cts.Cancel();
        }
    }

    /// <summary>Releases the token source once the work is over (under the gate, so a late <see cref="Leave"/> cannot race it).</summary>
    private protected void Release()
    {
        lock (Gate) Cts.Dispose();
    }
}

/// <summary>A <see cref="Flight"/> whose work produces a <typeparamref name="T"/>.</summary>
public class Flight<T> : Flight
{
    private readonly Func<CancellationToken, Task<T>>? _work;
    private Task<T>? _task;

    /// <param name="work">Runs on the thread pool with a token that fires when nobody waits any more or <paramref name="stopping"/> fires.</param>
    public Flight(Func<CancellationToken, Task<T>> work, CancellationToken stopping = default) : this(stopping)
    {
        ArgumentNullException.ThrowIfNull(work);
        _work = work;
    }

    /// <summary>For subclasses that override <see cref="RunAsync"/> instead of passing the work.</summary>
    protected Flight(CancellationToken stopping) : base(stopping) { }

    /// <summary>The work's outcome. Prefer <see cref="WaitAsync"/> for a caller that joined as a waiter.</summary>
    public Task<T> Task => _task ?? throw new InvalidOperationException("the flight has not started");

    public override bool IsCompleted => _task is { IsCompleted: true };

    internal override Task Completion => Task.ContinueWith(static _ => { }, CancellationToken.None,
        TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The work itself; by default the delegate given to the constructor.</summary>
    protected virtual Task<T> RunAsync(CancellationToken ct) =>
        (_work ?? throw new InvalidOperationException("pass the work to the constructor or override RunAsync"))(ct);

    internal override void Start()
    {
        var token = Cts.Token;
        _task = System.Threading.Tasks.Task.Run(() => RunAsync(token), CancellationToken.None);
        _task.ContinueWith(_ => Release(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Waits for the outcome as a caller that joined as a waiter. Giving up (<paramref name="ct"/>)
    /// ends only this wait; the work is cancelled when the last waiter gives up (see <see cref="Flight"/>).
    /// </summary>
    public async Task<T> WaitAsync(CancellationToken ct)
    {
        try
        {
            return await Task.WaitAsync(ct);
        }
        finally
        {
            if (!IsCompleted) Leave();
        }
    }
}
