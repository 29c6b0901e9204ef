namespace Bough.Engine.Lifecycle;

/// <summary>
/// The daemon's "shutting down" signal. Every lifecycle operation (create, delete, snapshot,
/// branch, pause, resume, template) and every streamed exec links its request token with it,
/// so a shutdown ends them instead of waiting for them.
/// </summary>
internal sealed class EngineLifetime : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    public CancellationToken Stopping => _stopping.Token;
    public bool IsStopping => _stopping.IsCancellationRequested;

    public void BeginShutdown() => _stopping.Cancel();

    /// <summary>A token cancelled by the request or by shutdown, whichever comes first.</summary>
    public CancellationTokenSource Link(CancellationToken request) =>
        CancellationTokenSource.CreateLinkedTokenSource(request, _stopping.Token);

    /// <summary>
    /// Turns a cancellation caused by shutdown (not by the caller) into a clear error; the
    /// caller's own cancellation passes through.
    /// </summary>
    public Exception Explain(Exception ex, CancellationToken request) =>
        ex is OperationCanceledException && !request.IsCancellationRequested && IsStopping
            ? ErrorMap.ShuttingDown(ex) : ex;

    public void Dispose() => _stopping.Dispose();
}
