namespace Bough.Contracts;

// The event stream (GET /v1/events, server-sent events): what changed in the daemon, as it is committed to the
// catalog, so that a client can keep a view of sandboxes and snapshots live without polling.

/// <summary>The <c>event:</c> names of the stream (<see cref="BoughEvent.Type"/>).</summary>
public static class EventTypes
{
    /// <summary>
    /// The first event of every stream: the subscription is in place, every later change will be sent. A client lists
    /// what it shows after this event, not before, so that no change falls between the list and the stream.
    /// </summary>
    public const string Ready = "ready";

    /// <summary>
    /// Events were dropped because this client read too slowly (the daemon never waits for a client): list again.
    /// The events after it are complete again.
    /// </summary>
    public const string Resync = "resync";

    /// <summary>A sandbox's row exists (state <c>starting</c>); <see cref="BoughEvent.Sandbox"/> is set.</summary>
    public const string SandboxCreated = "sandbox.created";

    /// <summary>A sandbox's state changed (running, paused, stopped, dead, stopping); <see cref="BoughEvent.Sandbox"/> is set.</summary>
    public const string SandboxState = "sandbox.state";

    /// <summary>A sandbox's row is gone (deleted, a create that failed, or its deadline); <see cref="BoughEvent.Id"/> is set.</summary>
    public const string SandboxDeleted = "sandbox.deleted";

    /// <summary>A snapshot was published (a capture, a branch, a pause, a template, a boot snapshot, a compaction); <see cref="BoughEvent.Snapshot"/> is set.</summary>
    public const string SnapshotCreated = "snapshot.created";

    /// <summary>A snapshot was removed (by request, a cascade, or the collector); <see cref="BoughEvent.Id"/> is set.</summary>
    public const string SnapshotDeleted = "snapshot.deleted";

    /// <summary>
    /// A pull, import or build in progress (the first one says it started): <see cref="BoughEvent.Image"/> is the image as
    /// <c>GET /v1/images/{name}</c> shows it then (state <c>pulling</c>, phase, per-layer digest, size, bytes done and
    /// state). At most four a second per image: a burst of changes is sent as its last state at the end of the quarter
    /// second, unless the outcome (created or failed) comes first and supersedes it.
    /// </summary>
    public const string ImageProgress = "image.progress";

    /// <summary>
    /// A pull, import or build ended with the image ready: <see cref="BoughEvent.Image"/> is its catalog entry. Reason
    /// <c>unchanged</c> when the same content was already published under the name (nothing new was written).
    /// </summary>
    public const string ImageCreated = "image.created";

    /// <summary>An image was removed, or a failure that <c>GET</c> still showed was forgotten (<see cref="BoughEvent.Reason"/> says which).</summary>
    public const string ImageDeleted = "image.deleted";

    /// <summary>
    /// A pull, import or build ended without publishing: <see cref="BoughEvent.Image"/> has state <c>failed</c> and the
    /// error as the API would have returned it, or no error and reason <c>cancelled</c> (every caller gave up or the
    /// daemon is stopping).
    /// </summary>
    public const string ImageFailed = "image.failed";

    /// <summary>
    /// The category of an event type, the part before the dot (<c>sandbox</c>, <c>snapshot</c>, <c>image</c>), as the
    /// <c>?types=</c> filter names it; <see cref="Ready"/> and <see cref="Resync"/> are sent whatever the filter.
    /// </summary>
    public static string Category(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var dot = type.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? type : type[..dot];
    }
}

/// <summary>One event of the stream; its JSON is the <c>data:</c> line, its <see cref="Sequence"/> the <c>id:</c> line.</summary>
public sealed record BoughEvent
{
    /// <summary>Increases by one with every event the daemon publishes (a filtered or slow stream skips some); restarts with the daemon.</summary>
    public long Sequence { get; init; }

    /// <summary>When the change was committed.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>One of <see cref="EventTypes"/>.</summary>
    public required string Type { get; init; }

    /// <summary>The sandbox id, snapshot id or image name the event is about (null for <see cref="EventTypes.Ready"/> and <see cref="EventTypes.Resync"/>).</summary>
    public string? Id { get; init; }

    /// <summary>The sandbox as committed, for <see cref="EventTypes.SandboxCreated"/> and <see cref="EventTypes.SandboxState"/>.</summary>
    public Sandbox? Sandbox { get; init; }

    /// <summary>The snapshot as published (kind, tag, parent, source sandbox, stored bytes, pause time), for <see cref="EventTypes.SnapshotCreated"/>.</summary>
    public Snapshot? Snapshot { get; init; }

    /// <summary>The image, for <see cref="EventTypes.ImageProgress"/>, <see cref="EventTypes.ImageCreated"/> and <see cref="EventTypes.ImageFailed"/>.</summary>
    public Image? Image { get; init; }

    /// <summary>Why, when the daemon knows more than the type says (a deletion's cause).</summary>
    public string? Reason { get; init; }
}
