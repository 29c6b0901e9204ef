using System.Collections.Concurrent;
using Bough.Contracts;
using Bough.Images.Concurrency;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// The pulls, imports and builds in progress, one per name (a <see cref="SingleFlight{TKey, TFlight}"/>
/// of <see cref="ImageOperation"/>s), and the recent failures. In-progress state lives in memory only;
/// a failure stays visible to <c>GET</c> for <see cref="FailedRetention"/>, never in the catalog. Each operation's
/// outcome is published (<see cref="ImageEvents"/>) once it is over, after its last progress event.
/// </summary>
internal sealed class ImageOperations(ImageEvents events, ILogger log) : IDisposable
{
    /// <summary>How long a failed operation stays visible to pollers.</summary>
    public static readonly TimeSpan FailedRetention = TimeSpan.FromMinutes(10);

    private readonly SingleFlight<string, ImageOperation> _flights = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (ProblemSummary Error, string Source, DateTimeOffset At)> _failed = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();

    /// <summary>
    /// Starts or joins the operation for <paramref name="key"/> and answers as the caller asked: wait
    /// for the outcome (201 or 200), or return at once with its progress (202).
    /// </summary>
    /// <param name="key">The image name; an import without a name uses <c>import:&lt;path&gt;</c> until the archive tells it.</param>
    public async Task<ImageAnswer> RunAsync(string key, string source, bool wait,
        Func<ImageOperation, CancellationToken, Task<PublishOutcome>> body, CancellationToken ct)
    {
        var nameKnown = !key.StartsWith("import:", StringComparison.Ordinal);
        var (op, started) = _flights.Join(key, background: !wait,
            () => new ImageOperation(key, source, nameKnown, Translated(body), events, _shutdown.Token));
        if (started)
        {
            _failed.TryRemove(key, out _);
            op.Changed(); // the first progress event says it started
            _ = op.Task.ContinueWith(t => Finished(op, t), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }

        if (!wait)
        {
            await op.NameKnown.Task.WaitAsync(ct); // never faults: a failure completes it too
            if (op.Task.IsCompleted) return new ImageAnswer(ToContract((await op.Task).Row), ImageOutcome.Accepted);
            return new ImageAnswer(op.Describe(), ImageOutcome.Accepted);
        }

        var outcome = await op.WaitAsync(ct);
        return new ImageAnswer(ToContract(outcome.Row), outcome.Existing ? ImageOutcome.Existing : ImageOutcome.Created);
    }

    /// <summary>Operations still running whose name is known.</summary>
    public IReadOnlyList<ImageOperation> Active() => _flights.Active().Where(o => o.NameKnown.Task.IsCompleted).ToList();

    /// <summary>Whether an operation for any of <paramref name="names"/> is running (known name or not yet).</summary>
    public bool IsRunning(IEnumerable<string> names)
    {
        var active = _flights.Active();
        return names.Any(n => active.Any(o => o.Name == n));
    }

    /// <summary>A failure of <paramref name="name"/> within the retention window, as the API shows it.</summary>
    public Image? RecentFailure(string name) =>
        _failed.TryGetValue(name, out var f) && f.At > DateTimeOffset.UtcNow - FailedRetention
            ? new Image { Name = name, State = ImageStates.Failed, Source = f.Source, Error = f.Error, CreatedAt = f.At }
            : null;

    /// <summary>Forgets a failure (delete of what <c>GET</c> shows as failed).</summary>
    public bool ForgetFailure(string name) => _failed.TryRemove(name, out _);

    /// <summary>Cancels operations in progress (the daemon is stopping).</summary>
    public void BeginShutdown() => _shutdown.Cancel();

    public void Dispose() => _shutdown.Dispose();

    public static Image ToContract(Bough.Catalog.ImageRecord r) => new()
    {
        Name = r.Name, State = ImageStates.Ready, Source = r.Source, Digest = r.Digest,
        ContentBytes = r.ContentBytes, DiskBytes = r.DiskBytes, Config = ImageConfigs.FromJson(r.ConfigJson),
        CreatedAt = r.CreatedAt,
    };

    /// <summary>Every waiter sees the same API error, whatever layer failed.</summary>
    private static Func<ImageOperation, CancellationToken, Task<PublishOutcome>> Translated(
        Func<ImageOperation, CancellationToken, Task<PublishOutcome>> body) => async (op, token) =>
    {
        try { return await body(op, token); }
        catch (Exception ex) { throw ImageErrors.Translate(ex); }
    };

    private void Finished(ImageOperation op, Task<PublishOutcome> t)
    {
        // An import that failed before its archive told the name was never announced: nothing to conclude.
        var announced = op.NameKnown.Task.IsCompleted;
        op.NameKnown.TrySetResult();
        op.CloseProgress();
        if (t.IsCompletedSuccessfully)
        {
            events.Created(ToContract(t.Result.Row), t.Result.Existing);
        }
        // A pull every client gave up on (or the daemon stopping) is not a failure worth reporting.
        else if (op.WasCancelled)
        {
            log.LogInformation("image operation for {Name} cancelled: no client is waiting for it", op.Name);
            if (announced) events.Failed(op.Describe() with { State = ImageStates.Failed, Layers = null }, "cancelled");
        }
        else if (t.IsFaulted)
        {
            var ex = ImageErrors.Translate(t.Exception!.GetBaseException());
            var error = new ProblemSummary(ex.Code, ex.Message);
            _failed[op.Name] = (error, op.Source, DateTimeOffset.UtcNow);
            log.LogWarning("image operation for {Name} failed: {Code}: {Message}", op.Name, ex.Code, ex.Message);
            if (announced)
                events.Failed(new Image { Name = op.Name, State = ImageStates.Failed, Source = op.Source, Error = error, CreatedAt = op.StartedAt }, null);
        }
        var cutoff = DateTimeOffset.UtcNow - FailedRetention;
        foreach (var (name, f) in _failed)
            if (f.At < cutoff) _failed.TryRemove(name, out _);
    }
}
