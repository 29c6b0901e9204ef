using System.Diagnostics;

namespace Bough.Images.Oci;

/// <summary>
/// Collects per-layer progress from concurrent downloads and reports snapshots: on every state change
/// and phase change, otherwise at most once per interval, so a fast download does not flood the
/// listener (which may be an HTTP stream to a client).
/// </summary>
internal sealed class PullProgressTracker(IProgress<PullProgress>? sink, TimeSpan interval)
{
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private LayerProgress[] _layers = [];
    private string _phase = "resolving";
    private TimeSpan _lastReport = TimeSpan.MinValue;

    public void SetPhase(string phase) => Mutate(() => _phase = phase, force: true);

    public void SetLayers(IEnumerable<LayerProgress> layers) => Mutate(() => _layers = layers.ToArray(), force: true);

    /// <summary>Sets the state of every layer with this digest (a manifest may list a blob twice).</summary>
    public void SetState(string digest, string state, long? done = null) => Mutate(() =>
    {
        for (var i = 0; i < _layers.Length; i++)
            if (_layers[i].Digest == digest)
                _layers[i] = _layers[i] with { State = state, Done = done ?? _layers[i].Done };
    }, force: true);

    public void SetDone(string digest, long done) => Mutate(() =>
    {
        for (var i = 0; i < _layers.Length; i++)
            if (_layers[i].Digest == digest) _layers[i] = _layers[i] with { Done = done };
    }, force: false);

    private void Mutate(Action change, bool force)
    {
        if (sink is null) return;
        PullProgress? snapshot = null;
        lock (_gate)
        {
            change();
            var now = _clock.Elapsed;
            if (force || now - _lastReport >= interval)
            {
                _lastReport = now;
                snapshot = new PullProgress(_phase, _layers.ToArray());
            }
        }
        if (snapshot is not null) sink.Report(snapshot);
    }
}
