using Bough.Contracts;

namespace Bough.Engine.Events;

/// <summary>
/// The engine's changes as a stream, for <c>GET /v1/events</c>: sandboxes created, changing state and deleted,
/// snapshots published and removed, each published once its catalog row changed; image pulls, imports and builds
/// (throttled progress, then their outcome) and image deletions. The events are the wire type
/// (<see cref="BoughEvent"/>) because the engine already speaks contracts to the HTTP layer and a second shape
/// would only be mapped one to one.
/// </summary>
public interface IEngineEvents
{
    /// <summary>
    /// Subscribes until <paramref name="ct"/> ends. The first event is <see cref="EventTypes.Ready"/>: from then on
    /// nothing is missed, except when this subscriber reads too slowly; then the oldest pending events are dropped
    /// and an <see cref="EventTypes.Resync"/> comes before the next one (the engine never waits for a reader).
    /// </summary>
    IAsyncEnumerable<BoughEvent> SubscribeAsync(CancellationToken ct);
}
