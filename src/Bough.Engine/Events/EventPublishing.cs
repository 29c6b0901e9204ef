using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Sandboxes;

namespace Bough.Engine.Events;

/// <summary>
/// The engine's publish points in one vocabulary: each service calls one of these right after the catalog row
/// changed, so the event says what is committed (a crash after it never leaves a client believing in a row that
/// is not there).
/// </summary>
internal static class EventPublishing
{
    public static void SandboxCreated(this EventBus bus, SandboxRecord row) =>
        bus.Publish(new BoughEvent { Type = EventTypes.SandboxCreated, Id = row.Id, Sandbox = ContractMapping.ToContract(row) });

    public static void SandboxState(this EventBus bus, SandboxRecord row) =>
        bus.Publish(new BoughEvent
        {
            Type = EventTypes.SandboxState, Id = row.Id, Sandbox = ContractMapping.ToContract(row), Reason = row.StateReason,
        });

    public static void SandboxDeleted(this EventBus bus, string id, string reason) =>
        bus.Publish(new BoughEvent { Type = EventTypes.SandboxDeleted, Id = id, Reason = reason });

    public static void SnapshotCreated(this EventBus bus, SnapshotRecord row) =>
        bus.Publish(new BoughEvent { Type = EventTypes.SnapshotCreated, Id = row.Id, Snapshot = ContractMapping.ToContract(row) });

    public static void SnapshotDeleted(this EventBus bus, string id, string reason) =>
        bus.Publish(new BoughEvent { Type = EventTypes.SnapshotDeleted, Id = id, Reason = reason });

    public static void ImageProgress(this EventBus bus, Image image) =>
        bus.Publish(new BoughEvent { Type = EventTypes.ImageProgress, Id = image.Name, Image = image });

    public static void ImageCreated(this EventBus bus, Image image, bool unchanged) =>
        bus.Publish(new BoughEvent { Type = EventTypes.ImageCreated, Id = image.Name, Image = image, Reason = unchanged ? "unchanged" : null });

    public static void ImageFailed(this EventBus bus, Image image, string? reason) =>
        bus.Publish(new BoughEvent { Type = EventTypes.ImageFailed, Id = image.Name, Image = image, Reason = reason });

    public static void ImageDeleted(this EventBus bus, string name, string reason) =>
        bus.Publish(new BoughEvent { Type = EventTypes.ImageDeleted, Id = name, Reason = reason });
}
