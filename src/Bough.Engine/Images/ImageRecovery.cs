using Bough.Catalog;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// Start-up reconciliation of the image files with the catalog: staging leftovers (image builds,
/// blob downloads) go, and so does every published directory that no row names as its id or a
/// previous id (a publish or delete interrupted between the rename and the row).
/// </summary>
internal sealed class ImageRecovery(ImageStore images, GuestImageBuilder builder, BlobStore blobs, ILogger log)
{
    /// <summary>Call before any image operation runs (nothing may be building into staging).</summary>
    public async Task RecoverAsync(CancellationToken ct)
    {
        builder.CleanStaging();
        blobs.CleanStaging();
        var rows = await images.ListAsync(ct);
        var known = rows.SelectMany(r => r.PreviousIds.Append(r.Id)).ToHashSet(StringComparer.Ordinal);
        foreach (var id in builder.ListPublishedIds())
        {
            if (known.Contains(id)) continue;
            log.LogWarning("removing image directory {Id}: no catalog row (interrupted publish or delete)", id);
            try { builder.Delete(id); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove image {Id}", id); }
        }
    }
}
