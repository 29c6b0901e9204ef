using Bough.Catalog;
using Bough.Images;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// The last steps of every pull, import and build: layers → staging root, root → published image
/// directory (<see cref="GuestImageBuilder"/>: <c>/.bough</c>, ext4, qcow2, rename), then the
/// catalog row. Everything slow happens outside the name's lock (<see cref="ImageLocks"/>); the lock
/// covers only the digest re-check and the row, so boots of the current image never wait for a
/// re-publish. A directory published but never named by a row (lost race, crash) is removed at once
/// or at start-up.
/// </summary>
/// <param name="limits">Caps the layers of one image share while they are flattened (<see cref="ExtractionBudget"/>).</param>
internal sealed class ImagePublisher(ImageStore images, GuestImageBuilder builder, ImageLocks locks, ImageLimits limits, ILogger log)
{
    /// <summary>Publishes a resolved image unless the same content (manifest digest) is already the name's image.</summary>
    public async Task<PublishOutcome> PublishResolvedAsync(ImageOperation op, ResolvedImage resolved, long? diskSize, CancellationToken ct)
    {
        var current = await images.GetAsync(op.Name, ct);
        if (current is not null && current.Digest == resolved.ManifestDigest) return new PublishOutcome(current, true);

        op.SetPhase("extracting");
        var root = builder.NewStagingDir();
        try
        {
            var budget = new ExtractionBudget(limits);
            for (var i = 0; i < resolved.Layers.Count; i++)
            {
                op.SetLayerState(i, "extracting");
                await LayerFlattener.ApplyAsync(resolved.Layers[i], root, budget, ct);
                op.SetLayerState(i, "done");
            }
            op.SetPhase("publishing");
            return await PublishAsync(op.Name, op.Source, root, resolved.Config, resolved.ManifestDigest, diskSize, ct);
        }
        finally { DeleteStaging(root); }
    }

    /// <summary>
    /// Builds the image from a staging root (consumed), then, under the name's lock, writes its row,
    /// unless an image of the same digest was published meanwhile (then that one is the answer and
    /// this build is discarded). A replaced image's id moves to <see cref="ImageRecord.PreviousIds"/>:
    /// overlays of running sandboxes are backed by its disk by path.
    /// </summary>
    /// <param name="digest">The manifest digest; null for recipe builds, which always publish.</param>
    public async Task<PublishOutcome> PublishAsync(string name, string source, string root, OciImageConfig config, string? digest,
        long? diskSize, CancellationToken ct)
    {
        var published = await builder.PublishAsync(name, root, config, digest, diskSize, null, ct);
        var committed = false;
        try
        {
            using (await locks.LockAsync(name, ct))
            {
                var current = await images.GetAsync(name, ct);
                if (digest is not null && current is not null && current.Digest == digest) return new PublishOutcome(current, true);
                var row = new ImageRecord
                {
                    Name = name, Id = published.Id, Source = source, Digest = digest,
                    DiskPath = published.DiskPath, Dir = published.Dir,
                    ConfigJson = ImageConfigs.ToJson(ImageConfigs.FromOci(published.Config)),
                    ContentBytes = published.ContentBytes, DiskBytes = published.DiskBytes, CreatedAt = DateTimeOffset.UtcNow,
                    PreviousIds = current is null ? [] : [.. current.PreviousIds, current.Id],
                };
                await images.UpsertAsync(row, CancellationToken.None);
                committed = true;
                log.LogInformation("image {Name} published as {Id} ({Source}, {Digest})", name, published.Id, source, digest ?? "-");
                return new PublishOutcome(row, false);
            }
        }
        finally
        {
            if (!committed) TryDeleteImage(published.Id);
        }
    }

    /// <summary>Removes a staging root and the per-build work directory the builder made around it.</summary>
    public void DeleteStaging(string root)
    {
        var work = Path.GetDirectoryName(Path.GetFullPath(root));
        var insideStaging = work is not null && Path.GetDirectoryName(work) == Path.GetFullPath(builder.StagingRoot);
        var dir = insideStaging ? work! : root;
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove {Dir}", dir); }
    }

    /// <summary>Removes a published directory no row names (start-up retries what fails here).</summary>
    public void TryDeleteImage(string id)
    {
        try { builder.Delete(id); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.LogWarning(ex, "could not remove image directory {Id}; start-up will retry", id);
        }
    }
}
