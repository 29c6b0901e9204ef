using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Events;
using Bough.Engine.Setup;
using Bough.Images;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.Images.Rootfs;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// Pulls, imports and builds images and keeps the image catalog; the API's view of the image
/// pipeline in <c>Bough.Images</c> (Oci → Rootfs → Disk → Publish). The work is split by job:
/// <see cref="ImageOperations"/> (one operation per name, progress, recent failures),
/// <see cref="ImagePublisher"/> (build outside the lock, then digest re-check and row under it),
/// <see cref="ImageLocks"/> (per-name locks and boot leases), <see cref="ImageRecovery"/> (start-up).
/// </summary>
/// <remarks>
/// Imports read only from the <see cref="ImportDirectory"/> (<c>&lt;data dir&gt;/import</c> unless one is
/// registered): a path outside it, after resolving links and <c>..</c>, is 403 <c>permission_denied</c>.
/// Locks: a name's lock is held only for catalog decisions (publish's re-check and row, delete's
/// in-use check and row removal, a boot taking its lease), so an image cannot vanish between a
/// create resolving it and the sandbox row naming it, and a create never waits for a build.
/// </remarks>
public sealed class ImageService : IImageService, IDisposable
{
    private readonly PreparedHost _host;
    private readonly ImageStore _images;
    private readonly OciPuller _puller;
    private readonly OciArchiveImporter _importer;
    private readonly GuestImageBuilder _builder;
    private readonly ImageLocks _locks = new();
    private readonly ImageOperations _operations;
    private readonly ImagePublisher _publisher;
    private readonly ImageDeleter _deleter;
    private readonly ImageRecovery _recovery;
    private readonly ImportDirectory _importDirectory;
    private readonly ImageEvents _events;

    /// <param name="limits">Caps for flattening layers; default <see cref="ImageLimits"/> when none is registered.</param>
    /// <param name="importDirectory">Where imports may read; default <c>&lt;data dir&gt;/import</c> when none is registered.</param>
    /// <param name="events">
    /// The engine's event stream, which image progress, outcomes and deletions are published on. It is taken as the public
    /// <see cref="IEngineEvents"/> because this constructor is public (the container calls it); the engine's own
    /// implementation is its <see cref="EventBus"/>, and with any other (or none) nothing is published.
    /// </param>
    /// <param name="time">The clock of the progress throttle; the system's when none is registered.</param>
    public ImageService(PreparedHost host, EngineOptions options, ImageStore images, SandboxStore sandboxes, SnapshotStore snapshots,
        TemplateStore templates, GuestImageBuilder builder, BlobStore blobs, OciPuller puller, OciArchiveImporter importer,
        ILogger<ImageService> log, ImageLimits? limits = null, ImportDirectory? importDirectory = null,
        IEngineEvents? events = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _importDirectory = importDirectory ?? ImportDirectory.ForDataDir(options.DataDir);
        _host = host;
        _images = images;
        _puller = puller;
        _importer = importer;
        _builder = builder;
        _events = new ImageEvents(events as EventBus, time ?? TimeProvider.System);
        _operations = new ImageOperations(_events, log);
        _publisher = new ImagePublisher(images, builder, _locks, limits ?? new ImageLimits(), log);
        _deleter = new ImageDeleter(images, sandboxes, snapshots, templates, _locks, _publisher, _events, log);
        _recovery = new ImageRecovery(images, builder, blobs, log);
    }

    /// <summary>How long a failed operation stays visible to pollers.</summary>
    public static TimeSpan FailedRetention => ImageOperations.FailedRetention;

    private string BaseName => _host.BaseImage.Name;

    // ---------------------------------------------------------------- pull / import / build

    public Task<ImageAnswer> PullAsync(PullImageRequest request, bool wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Ref)) throw BoughException.Invalid("field 'ref' is required (e.g. \"busybox\", \"python:3.12-slim\")");
        var reference = ImageNames.ParseReference(request.Ref);
        var diskSize = ImageNames.DiskSize(request.DiskSizeMiB);
        var insecure = request.Insecure ?? false;
        return _operations.RunAsync(reference.ToString(), "registry", wait, async (op, token) =>
        {
            var resolved = await _puller.PullAsync(reference, insecure, Progress(op), token);
            return await _publisher.PublishResolvedAsync(op, resolved, diskSize, token);
        }, ct);
    }

    public Task<ImageAnswer> ImportAsync(ImportImageRequest request, bool wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Path)) throw BoughException.Invalid("field 'path' is required: an OCI layout directory or a docker-save tar in the daemon's import directory");
        if (!Path.IsPathRooted(request.Path)) throw BoughException.Invalid($"path must be absolute (got '{request.Path}')");
        string path;
        try { path = _importDirectory.Resolve(request.Path); } // the real path: what is opened is what was checked
        catch (ImageException ex) { throw ImageErrors.Translate(ex); }
        if (request.Name is not null) ValidateName(request.Name);
        var diskSize = ImageNames.DiskSize(request.DiskSizeMiB);
        // Without a name the operation is keyed by the path until the archive tells its reference.
        var key = request.Name ?? "import:" + path;
        return _operations.RunAsync(key, "archive", wait, async (op, token) =>
        {
            var resolved = await _importer.ImportAsync(path, Progress(op), token);
            if (request.Name is null)
            {
                var recorded = resolved.Reference ?? throw new BoughException(ErrorCodes.InvalidRequest,
                    $"the archive at '{path}' does not record an image name; pass 'name'");
                op.SetName(ImageNames.ParseReference(recorded).ToString());
            }
            return await _publisher.PublishResolvedAsync(op, resolved, diskSize, token);
        }, ct);
    }

    public Task<ImageAnswer> BuildAsync(BuildImageRequest request, bool wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Recipe))
            throw BoughException.Invalid($"field 'recipe' is required (one of: {string.Join(", ", ImageRecipes.Names)})");
        if (!ImageRecipes.Names.Contains(request.Recipe))
            throw BoughException.Invalid($"unknown recipe '{request.Recipe}' (known: {string.Join(", ", ImageRecipes.Names)})");
        var name = request.Name ?? request.Recipe;
        ValidateName(name);
        var recipe = request.Recipe;
        return _operations.RunAsync(name, "recipe", wait, async (op, token) =>
        {
            // A recipe build takes minutes: an image already built under this name is the answer
            // (delete it to rebuild).
            if (await _images.GetAsync(name, token) is { } existing) return new PublishOutcome(existing, true);
            op.SetPhase("building");
            var root = _builder.NewStagingDir();
            try
            {
                var config = await ImageRecipes.BuildRootAsync(recipe, root, null, token);
                op.SetPhase("publishing");
                return await _publisher.PublishAsync(name, "recipe", root, config, null, null, token);
            }
            finally { _publisher.DeleteStaging(root); }
        }, ct);
    }

    private static InlineProgress<PullProgress> Progress(ImageOperation op) => new(p =>
        op.SetProgress(p.Phase, p.Layers.Select(l => new LayerStatus { Digest = l.Digest, Size = l.Size, Done = l.Done, State = l.State })));

    // ---------------------------------------------------------------- catalog

    public async Task<IReadOnlyList<Image>> ListAsync(CancellationToken ct)
    {
        var list = new List<Image> { BaseImage() };
        var rows = await _images.ListAsync(ct);
        list.AddRange(rows.Select(r => ImageOperations.ToContract(r) with { Layers = null }));
        var names = rows.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var op in _operations.Active())
            if (names.Add(op.Name))
                list.Add(op.Describe() with { Layers = null });
        return list;
    }

    public async Task<Image> GetAsync(string name, CancellationToken ct)
    {
        if (IsBase(name)) return BaseImage();
        foreach (var candidate in ImageNames.Candidates(name))
        {
            if (_operations.Active().FirstOrDefault(o => o.Name == candidate) is { } op) return op.Describe();
            if (await _images.GetAsync(candidate, ct) is { } row) return ImageOperations.ToContract(row);
            if (_operations.RecentFailure(candidate) is { } failed) return failed;
        }
        throw ImageErrors.NotFound(name);
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        if (IsBase(name))
            throw new BoughException(ErrorCodes.Conflict, $"'{BaseName}' is the built-in image and cannot be deleted");
        var row = await FindRowAsync(name, ct);
        if (row is null)
        {
            var candidates = ImageNames.Candidates(name).ToList();
            if (_operations.IsRunning(candidates))
                throw new BoughException(ErrorCodes.Conflict, $"image '{name}' is still being pulled; delete it once it is ready");
            // A failed operation is forgotten on delete, so `rm` of what GET shows as failed works.
            if (candidates.FirstOrDefault(_operations.ForgetFailure) is { } forgotten)
            {
                _events.Deleted(forgotten, "failure forgotten");
                return;
            }
            throw ImageErrors.NotFound(name);
        }
        await _deleter.DeleteAsync(row.Name, ct);
    }

    // ---------------------------------------------------------------- for the engine

    /// <summary>
    /// Resolves a name for a boot and holds a lease on it (delete answers 409 while held), so the
    /// image cannot be removed before the sandbox row that names it exists. Dispose after that insert.
    /// Waits only for a catalog decision about the name in progress, never for an image build.
    /// </summary>
    internal async Task<ImageLease> AcquireAsync(string name, CancellationToken ct)
    {
        if (IsBase(name))
            return new ImageLease(new BootImage(BaseName, _host.BaseImage.DiskPath, new ImageConfig()), null);
        var row = await FindRowAsync(name, ct) ?? throw ImageErrors.NotFound(name);
        using (await _locks.LockAsync(row.Name, ct))
        {
            // Re-read under the lock: a delete may have won the race.
            row = await _images.GetAsync(row.Name, ct) ?? throw ImageErrors.NotFound(name);
            return _locks.Lease(new BootImage(row.Name, row.DiskPath, ImageConfigs.FromJson(row.ConfigJson)));
        }
    }

    /// <summary>The exec defaults of an image a sandbox was created from (empty for base or an image gone since).</summary>
    internal async Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct)
    {
        if (IsBase(name)) return new ImageConfig();
        var row = await _images.GetAsync(name, ct);
        return row is null ? new ImageConfig() : ImageConfigs.FromJson(row.ConfigJson);
    }

    /// <summary>Start-up: drop staging leftovers (image builds, blob downloads) and published directories no row accounts for.</summary>
    internal Task RecoverAsync(CancellationToken ct) => _recovery.RecoverAsync(ct);

    /// <summary>Cancels operations in progress (the daemon is stopping).</summary>
    internal void BeginShutdown() => _operations.BeginShutdown();

    public void Dispose() => _operations.Dispose();

    // ---------------------------------------------------------------- helpers

    private bool IsBase(string name) => name == "base" || name == BaseName;

    private void ValidateName(string name)
    {
        ImageNames.Validate(name);
        if (IsBase(name)) throw new BoughException(ErrorCodes.ImageExists, $"'{name}' is the built-in image's name");
    }

    private async Task<ImageRecord?> FindRowAsync(string name, CancellationToken ct)
    {
        foreach (var c in ImageNames.Candidates(name))
            if (await _images.GetAsync(c, ct) is { } row) return row;
        return null;
    }

    private Image BaseImage()
    {
        long size = 0;
        try { size = new FileInfo(_host.BaseImage.DiskPath).Length; } catch (IOException) { }
        return new Image
        {
            Name = BaseName, State = ImageStates.Ready, Source = "builtin", DiskBytes = size,
            Config = new ImageConfig(), CreatedAt = _host.BaseImage.BuiltAt,
        };
    }
}
