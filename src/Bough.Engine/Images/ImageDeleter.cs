using Bough.Catalog;
using Bough.Contracts;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// Deletes an image once nothing uses it: no boot lease, sandbox, snapshot (but its boot snapshots) or template names it
/// (else 409 <c>image_in_use</c> naming them). The check and the row removal happen under the
/// name's lock, the same lock a boot takes its lease under, so a delete and a create never both win.
/// </summary>
internal sealed class ImageDeleter(ImageStore images, SandboxStore sandboxes, SnapshotStore snapshots, TemplateStore templates,
    ImageLocks locks, ImagePublisher publisher, ImageEvents events, ILogger log)
{
    /// <param name="name">The image's canonical name (its row's).</param>
    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        using (await locks.LockAsync(name, ct))
        {
            // Re-read under the lock: a publish may have replaced the row (new id, one more previous id).
            var row = await images.GetAsync(name, ct) ?? throw ImageErrors.NotFound(name);
            var users = await UsersAsync(name, ct);
            if (users.Count > 0)
                throw new BoughException(ErrorCodes.ImageInUse,
                    $"image '{name}' is used by {string.Join("; ", users)}; delete those first");
            // Row first: from here on nothing can resolve the image; then its directories.
            await images.DeleteAsync(name, CancellationToken.None);
            events.Deleted(name, "deleted");
            foreach (var id in row.PreviousIds.Append(row.Id)) publisher.TryDeleteImage(id);
            log.LogInformation("image {Name} deleted", name);
        }
    }

    /// <summary>Sandboxes, snapshots and templates naming the image, plus creates holding a lease on it.</summary>
    private async Task<List<string>> UsersAsync(string name, CancellationToken ct)
    {
        var users = new List<string>();
        if (locks.LeaseCount(name) is var n and > 0) users.Add($"{n} sandbox(es) being created");
        var sandboxIds = (await sandboxes.ListAsync(ct)).Where(s => s.Image == name).Select(s => s.Id).ToList();
        if (sandboxIds.Count > 0) users.Add("sandboxes " + string.Join(", ", sandboxIds));
        // Boot snapshots are a cache, not users: once the image is gone they are stale and collected.
        var snaps = (await snapshots.ListAsync(ct)).Where(s => s.Image == name && s.Kind != SnapshotKind.Boot).Select(s => s.Id).ToList();
        if (snaps.Count > 0) users.Add("snapshots " + string.Join(", ", snaps));
        var names = (await templates.ListAsync(ct)).Where(t => t.Image == name).Select(t => t.Name).ToList();
        if (names.Count > 0) users.Add("templates " + string.Join(", ", names));
        return users;
    }
}
