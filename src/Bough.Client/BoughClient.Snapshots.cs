using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
    /// <summary>Captures a running sandbox as a snapshot; the sandbox keeps running.</summary>
    public Task<Snapshot> CreateSnapshotAsync(string id, string? tag = null, CancellationToken ct = default) =>
        SendJsonAsync<Snapshot>(HttpMethod.Post, SandboxPath(id) + "/snapshots", new CreateSnapshotRequest { Tag = tag }, ct);

    /// <summary>Captures a running sandbox and starts children from the capture.</summary>
    public Task<BranchResult> BranchAsync(string id, BranchRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<BranchResult>(HttpMethod.Post, SandboxPath(id) + "/branch", request, ct);
    }

    public Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<Snapshot>>("v1/snapshots", ct);

    /// <summary>One snapshot by id or tag, with its ancestors, children and sandboxes filled in.</summary>
    public Task<Snapshot> GetSnapshotAsync(string idOrTag, CancellationToken ct = default) =>
        GetJsonAsync<Snapshot>(SnapshotPath(idOrTag), ct);

    /// <summary>
    /// Deletes a snapshot. Without <paramref name="cascade"/> this fails (409 snapshot_in_use)
    /// while child snapshots or sandboxes depend on it; with it, they are deleted too.
    /// </summary>
    public async Task DeleteSnapshotAsync(string idOrTag, bool cascade = false, CancellationToken ct = default)
    {
        var path = SnapshotPath(idOrTag) + (cascade ? "?cascade=true" : "");
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(path));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>Writes a standalone copy of a snapshot (no ancestors) and returns the copy.</summary>
    public Task<Snapshot> CompactSnapshotAsync(string idOrTag, string? tag = null, CancellationToken ct = default) =>
        SendJsonAsync<Snapshot>(HttpMethod.Post, SnapshotPath(idOrTag) + "/compact", new CreateSnapshotRequest { Tag = tag }, ct);

    /// <summary>The lineage forest: snapshots with their child snapshots and the sandboxes started from them.</summary>
    public Task<LineageTree> GetTreeAsync(CancellationToken ct = default) =>
        GetJsonAsync<LineageTree>("v1/tree", ct);
}
