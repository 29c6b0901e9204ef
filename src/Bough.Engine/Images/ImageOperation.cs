using Bough.Catalog;
using Bough.Contracts;
using Bough.Images.Concurrency;

namespace Bough.Engine.Images;

/// <summary>What an image operation ended with: the published row, and whether it was already there with the same content.</summary>
internal sealed record PublishOutcome(ImageRecord Row, bool Existing);

/// <summary>
/// One pull, import or build in progress, shared by every request for the same name: a
/// <see cref="Flight{T}"/> (waiters, background callers, cancel when the last waiter leaves) plus
/// the progress that <c>GET /v1/images/{name}</c> shows while it runs (phase, layer bytes). Every change is
/// also reported to its progress throttle, which publishes it on the event stream once the name is known (an
/// import without a name would otherwise show its archive path as the image's name).
/// </summary>
internal sealed class ImageOperation : Flight<PublishOutcome>
{
    private readonly Lock _gate = new();
    private readonly Func<ImageOperation, CancellationToken, Task<PublishOutcome>> _body;
    private readonly ImageProgressThrottle? _progress;
    private List<LayerStatus> _layers = [];
    private string _phase = "resolving";
    private string _name;

    /// <param name="nameKnown">False for an import without a name: the archive tells it (see <see cref="SetName"/>).</param>
    /// <param name="events">Where progress is published; null for none.</param>
    public ImageOperation(string name, string source, bool nameKnown,
        Func<ImageOperation, CancellationToken, Task<PublishOutcome>> body, ImageEvents? events, CancellationToken stopping) : base(stopping)
    {
        _name = name;
        Source = source;
        _body = body;
        if (nameKnown) NameKnown.TrySetResult();
        _progress = events?.NewThrottle(this);
    }

    /// <summary>The image name; for an import without a name it becomes known once the archive is read.</summary>
    public string Name
    {
        get { lock (_gate) return _name; }
    }

    public string Source { get; }

    /// <summary>Completes when <see cref="Name"/> is final (or the operation failed first).</summary>
    public TaskCompletionSource NameKnown { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override Task<PublishOutcome> RunAsync(CancellationToken ct) => _body(this, ct);

    /// <summary>Sets the name an import learnt from its archive, and releases callers waiting to learn it.</summary>
    public void SetName(string name)
    {
        lock (_gate) _name = name;
        NameKnown.TrySetResult();
        Changed();
    }

    public void SetPhase(string phase)
    {
        lock (_gate) _phase = phase;
        Changed();
    }

    /// <summary>Phase and layers in one change, so no progress event shows the one without the other.</summary>
    public void SetProgress(string phase, IEnumerable<LayerStatus> layers)
    {
        lock (_gate)
        {
            _phase = phase;
            _layers = layers.ToList();
        }
        Changed();
    }

    public void SetLayerState(int index, string state)
    {
        lock (_gate)
        {
            if (index < 0 || index >= _layers.Count) return;
            var l = _layers[index];
            _layers[index] = l with { State = state, Done = state == "done" ? l.Size : l.Done };
        }
        Changed();
    }

    /// <summary>Reports the current state to the event stream (throttled); outside the gate, which the publication takes.</summary>
    public void Changed()
    {
        if (NameKnown.Task.IsCompleted) _progress?.Report();
    }

    /// <summary>Ends progress publication for good: the operation's outcome is published next.</summary>
    public void CloseProgress() => _progress?.Close();

    public Image Describe()
    {
        lock (_gate)
            return new Image
            {
                Name = _name, State = ImageStates.Pulling, Source = Source, Phase = _phase,
                Layers = _layers.ToList(), CreatedAt = StartedAt,
            };
    }
}

/// <summary>An IProgress that runs its handler inline (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
internal sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
