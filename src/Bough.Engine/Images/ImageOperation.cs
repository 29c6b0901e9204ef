using Bough.Catalog;
using Bough.Contracts;
using Bough.Images.Concurrency;

namespace Bough.Engine.Images;

/// <summary>What an image operation ended with: the published row, and whether it was already there with the same content.</summary>
internal sealed record PublishOutcome(ImageRecord Row, bool Existing);

/// <summary>
/// One pull, import or build in progress, shared by every request for the same name: a
/// <see cref="Flight{T}"/> (waiters, background callers, cancel when the last waiter leaves) plus
/// the progress that <c>GET /v1/images/{name}</c> shows while it runs (phase, layer bytes).
/// </summary>
internal sealed class ImageOperation : Flight<PublishOutcome>
{
    private readonly Lock _gate = new();
    private readonly Func<ImageOperation, CancellationToken, Task<PublishOutcome>> _body;
    private List<LayerStatus> _layers = [];
    private string _phase = "resolving";
    private string _name;

    /// <param name="nameKnown">False for an import without a name: the archive tells it (see <see cref="SetName"/>).</param>
    public ImageOperation(string name, string source, bool nameKnown,
        Func<ImageOperation, CancellationToken, Task<PublishOutcome>> body, CancellationToken stopping) : base(stopping)
    {
        _name = name;
        Source = source;
        _body = body;
        if (nameKnown) NameKnown.TrySetResult();
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
