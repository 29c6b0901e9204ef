using Bough.Contracts;
using Bough.Engine.Events;

namespace Bough.Engine.Images;

/// <summary>
/// The image side of <c>GET /v1/events</c>: progress of pulls, imports and builds (throttled per operation by
/// <see cref="ImageProgressThrottle"/>), their outcome, and deletions. Without a bus (a service built outside the
/// engine's container) nothing is published.
/// </summary>
internal sealed class ImageEvents(EventBus? bus, TimeProvider time)
{
    /// <summary>At most one progress event per operation per this interval (four a second).</summary>
    public static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The throttle that publishes <paramref name="op"/>'s progress, or null when there is no bus.</summary>
    public ImageProgressThrottle? NewThrottle(ImageOperation op) =>
        bus is null ? null : new ImageProgressThrottle(() => bus.ImageProgress(op.Describe()), time, ProgressInterval);

    public void Created(Image image, bool unchanged) => bus?.ImageCreated(image, unchanged);

    public void Failed(Image image, string? reason) => bus?.ImageFailed(image, reason);

    public void Deleted(string name, string reason) => bus?.ImageDeleted(name, reason);
}
