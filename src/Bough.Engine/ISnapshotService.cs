using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// Live branching and pause/resume, as the HTTP layer sees them. Failures are
/// <see cref="BoughException"/>s with stable codes (snapshot_not_found 404, tag_exists /
/// sandbox_busy / sandbox_not_running 409, too_many_captures 429 with RetryAfter).
/// </summary>
public interface IBranchingService
{
    /// <summary>POST /v1/sandboxes/{id}/snapshots: capture; the sandbox keeps running.</summary>
    Task<Snapshot> SnapshotAsync(string sandboxId, string? tag, CancellationToken ct);

    /// <summary>POST /v1/sandboxes/{id}/branch: capture, then start Count children from it (all or none).</summary>
    Task<BranchResult> BranchAsync(string sandboxId, BranchRequest request, CancellationToken ct);

    /// <summary>POST /v1/sandboxes with "snapshot": start Count (default 1) sandboxes from a snapshot (all or none).</summary>
    Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, CancellationToken ct);

    Task<Sandbox> PauseAsync(string sandboxId, CancellationToken ct);
    /// <summary>Resume with the daemon's default lifetime.</summary>
    Task<Sandbox> ResumeAsync(string sandboxId, CancellationToken ct);

    /// <summary>POST /v1/sandboxes/{id}/resume: a new lifetime starts (the request's timeout, else the daemon default).</summary>
    Task<Sandbox> ResumeAsync(string sandboxId, ResumeRequest? request, CancellationToken ct);
}

/// <summary>The snapshot catalog, as the HTTP layer sees it.</summary>
public interface ISnapshotService
{
    Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(CancellationToken ct);

    /// <summary>One snapshot by id or tag, with Ancestors, Children and Sandboxes filled.</summary>
    Task<Snapshot> GetSnapshotAsync(string idOrTag, CancellationToken ct);

    /// <summary>
    /// 409 snapshot_in_use while child snapshots depend on it, unless cascade, which deletes
    /// the whole subtree of snapshots. Sandboxes are never deleted implicitly: while any
    /// sandbox uses a snapshot of the subtree (or one is starting from it) the answer is 409.
    /// </summary>
    Task DeleteSnapshotAsync(string idOrTag, bool cascade, CancellationToken ct);

    /// <summary>A standalone copy (no ancestors) with the same content; returns the new snapshot.</summary>
    Task<Snapshot> CompactSnapshotAsync(string idOrTag, string? tag, CancellationToken ct);

    Task<LineageTree> GetTreeAsync(CancellationToken ct);
}

/// <summary>What templates need of branching beyond the public API: the template capture kind and forks that record their template.</summary>
internal interface ITemplateForks
{
    Task<Snapshot> CaptureTemplateAsync(string sandboxId, CancellationToken ct);
    Task<IReadOnlyList<Sandbox>> CreateFromSnapshotAsync(CreateSandboxRequest request, string? template, CancellationToken ct);
}
