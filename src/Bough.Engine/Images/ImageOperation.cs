using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Images;

/// <summary>
/// One pull, import or build in progress, shared by every request for the same name. Waiting
/// requests count as waiters; when the last one gives up (client disconnected) and nobody asked
/// for it in the background (<c>?async=true</c>), the operation is cancelled.
/// </summary>
internal sealed class ImageOperation
{
    private readonly Lock _gate = new();
    private int _waiters;
    private bool _detached;
    private List<LayerStatus> _layers = [];
    private string _phase = "resolving";

    public ImageOperation(string name, string source, CancellationToken shutdown)
    {
        Name = name;
        Source = source;
        Cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
    }

    /// <summary>The image name; for an import without a name it becomes known once the archive is read.</summary>
    public string Name { get; set; }
    public string Source { get; }
    public CancellationTokenSource Cts { get; }
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>The published row and whether it was already there with the same content.</summary>
    public Task<(ImageRecord Row, bool Existing)> Task { get; set; } = null!;

    /// <summary>Completes when <see cref="Name"/> is final (or the operation failed first).</summary>
    public TaskCompletionSource NameKnown { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsActive => !Task.IsCompleted && !Cts.IsCancellationRequested;

    /// <returns>False when the operation is already being cancelled (start a new one).</returns>
    public bool TryJoin(bool wait)
    {
        lock (_gate)
        {
            if (Cts.IsCancellationRequested) return false;
            if (wait) _waiters++;
            else _detached = true;
            return true;
        }
    }

    /// <summary>A waiter gave up; the last one cancels the operation unless it runs in the background.</summary>
    public void Leave()
    {
        lock (_gate)
        {
            if (--_waiters > 0 || _detached || Task.IsCompleted) return;
            Cts.Cancel();
        }
    }

    /// <summary>Releases the token source once the operation is over (under the gate, so a late <see cref="Leave"/> cannot race it).</summary>
    public void Complete()
    {
        lock (_gate) Cts.Dispose();
    }

    public void SetPhase(string phase)
    {
        lock (_gate) _phase = phase;
    }

    public void SetLayers(IEnumerable<LayerStatus> layers)
    {
        lock (_gate) _layers = layers.ToList();
    }

    public void SetLayerState(int index, string state)
    {
        lock (_gate)
        {
            if (index < 0 || index >= _layers.Count) return;
            var l = _layers[index];
            _layers[index] = l with { State = state, Done = state == "done" ? l.Size : l.Done };
        }
    }

    public Image Describe()
    {
        lock (_gate)
            return new Image
            {
                Name = Name, State = ImageStates.Pulling, Source = Source, Phase = _phase,
                Layers = _layers.ToList(), CreatedAt = StartedAt,
            };
    }
}

/// <summary>An IProgress that runs its handler inline (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
internal sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
