using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Setup;
using Bough.HostSetup;
using Bough.Images.Oci;
using Bough.Images.Rootfs;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Images;

/// <summary>
/// Pulls, imports and builds images and keeps the image catalog. Each operation lays out a root
/// directory in the builder's staging area, publishes it (rename into <c>images/oci/&lt;id&gt;</c>)
/// and writes the catalog row last, so a crash leaves at most a directory that start-up removes.
/// </summary>
/// <remarks>
/// Locks: a per-name publish lock serialises "read row, publish, write row" and delete against
/// each other and against <see cref="AcquireAsync"/> (a boot's lease), so an image cannot vanish
/// between a create resolving it and the sandbox row naming it. No lock is held across names.
/// </remarks>
public sealed partial class ImageService : IImageService
{
    /// <summary>How long a failed operation stays visible to pollers.</summary>
    public static readonly TimeSpan FailedRetention = TimeSpan.FromMinutes(10);

    private readonly EngineOptions _options;
    private readonly PreparedHost _host;
    private readonly ImageStore _images;
    private readonly SandboxStore _sandboxes;
    private readonly SnapshotStore _snapshots;
    private readonly TemplateStore _templates;
    private readonly GuestImageBuilder _builder;
    private readonly BlobStore _blobs;
    private readonly OciPuller _puller;
    private readonly OciArchiveImporter _importer;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _shutdown = new();

    private readonly Lock _opsGate = new();
    private readonly Dictionary<string, ImageOperation> _ops = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (ProblemSummary Error, string Source, DateTimeOffset At)> _failed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _nameLocks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _leases = new(StringComparer.Ordinal);

    public ImageService(EngineOptions options, PreparedHost host, ImageStore images, SandboxStore sandboxes,
        SnapshotStore snapshots, TemplateStore templates, GuestImageBuilder builder, BlobStore blobs, OciPuller puller,
        OciArchiveImporter importer, ILogger<ImageService> log)
    {
        _options = options;
        _host = host;
        _images = images;
        _sandboxes = sandboxes;
        _snapshots = snapshots;
        _templates = templates;
        _builder = builder;
        _blobs = blobs;
        _puller = puller;
        _importer = importer;
        _log = log;
    }

    private string BaseName => _host.BaseImage.Name;

    // ---------------------------------------------------------------- pull / import / build

    public Task<ImageAnswer> PullAsync(PullImageRequest request, bool wait, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Ref)) throw BoughException.Invalid("field 'ref' is required (e.g. \"busybox\", \"python:3.12-slim\")");
        var reference = ParseReference(request.Ref);
        var diskSize = DiskSize(request.DiskSizeMiB);
        var insecure = request.Insecure ?? false;
        var name = reference.ToString();
        return RunAsync(name, "registry", wait, ct, async (op, token) =>
        {
            var resolved = await _puller.PullAsync(reference, insecure, Progress(op), token);
            return await PublishResolvedAsync(op, resolved, diskSize, token);
        });
    }

    public Task<ImageAnswer> ImportAsync(ImportImageRequest request, bool wait, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Path)) throw BoughException.Invalid("field 'path' is required: an OCI layout directory or a docker-save tar on the daemon's host");
        if (!Path.IsPathRooted(request.Path)) throw BoughException.Invalid($"path must be absolute (got '{request.Path}')");
        var path = Path.GetFullPath(request.Path);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw BoughException.Invalid($"nothing at '{path}' on the daemon's host");
        if (request.Name is not null) ValidateName(request.Name);
        var diskSize = DiskSize(request.DiskSizeMiB);
        // Without a name the operation is keyed by the path until the archive tells its reference.
        var key = request.Name ?? "import:" + path;
        return RunAsync(key, "archive", wait, ct, async (op, token) =>
        {
            var resolved = await _importer.ImportAsync(path, Progress(op), token);
            if (request.Name is null)
            {
                var recorded = resolved.Reference ?? throw new BoughException(ErrorCodes.InvalidRequest,
                    $"the archive at '{path}' does not record an image name; pass 'name'");
                op.Name = ParseReference(recorded).ToString();
            }
            op.NameKnown.TrySetResult();
            return await PublishResolvedAsync(op, resolved, diskSize, token);
        });
    }

    public Task<ImageAnswer> BuildAsync(BuildImageRequest request, bool wait, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Recipe))
            throw BoughException.Invalid($"field 'recipe' is required (one of: {string.Join(", ", ImageRecipes.Names)})");
        if (!ImageRecipes.Names.Contains(request.Recipe))
            throw BoughException.Invalid($"unknown recipe '{request.Recipe}' (known: {string.Join(", ", ImageRecipes.Names)})");
        var name = request.Name ?? request.Recipe;
        ValidateName(name);
        var recipe = request.Recipe;
        return RunAsync(name, "recipe", wait, ct, async (op, token) =>
        {
            var nameLock = NameLock(name);
            // A recipe build takes minutes: an image already built under this name is the answer
            // (delete it to rebuild).
            if (await _images.GetAsync(name, token) is { } existing) return (existing, true);
            op.SetPhase("building");
            var root = _builder.NewStagingDir();
            try
            {
                var config = await ImageRecipes.BuildRootAsync(recipe, root, null, token);
                op.SetPhase("publishing");
                await nameLock.WaitAsync(token);
                try { return (await PublishAsync(name, "recipe", root, config, null, null, null, token), false); }
                finally { nameLock.Release(); }
            }
            finally { DeleteStaging(root); }
        });
    }

    /// <summary>Flattens a resolved image's layers into a staging root and publishes it, unless the same content is already published.</summary>
    private async Task<(ImageRecord Row, bool Existing)> PublishResolvedAsync(ImageOperation op, ResolvedImage resolved, long? diskSize, CancellationToken ct)
    {
        var nameLock = NameLock(op.Name);
        var current = await _images.GetAsync(op.Name, ct);
        if (current is not null && current.Digest == resolved.ManifestDigest) return (current, true);

        op.SetPhase("extracting");
        var root = _builder.NewStagingDir();
        try
        {
            for (var i = 0; i < resolved.Layers.Count; i++)
            {
                op.SetLayerState(i, "extracting");
                await LayerFlattener.ApplyAsync(resolved.Layers[i], root, ct);
                op.SetLayerState(i, "done");
            }
            op.SetPhase("publishing");
            await nameLock.WaitAsync(ct);
            try
            {
                current = await _images.GetAsync(op.Name, ct);
                if (current is not null && current.Digest == resolved.ManifestDigest) return (current, true);
                return (await PublishAsync(op.Name, op.Source, root, resolved.Config, resolved.ManifestDigest, diskSize, current, ct), false);
            }
            finally { nameLock.Release(); }
        }
        finally { DeleteStaging(root); }
    }

    /// <summary>Publishes a staging root and writes the row (last). Caller holds the name's lock.</summary>
    private async Task<ImageRecord> PublishAsync(string name, string source, string root, OciImageConfig config, string? digest,
        long? diskSize, ImageRecord? replacing, CancellationToken ct)
    {
        var published = await _builder.PublishAsync(name, root, config, digest, diskSize, null, ct);
        var row = new ImageRecord
        {
            Name = name, Id = published.Id, Source = source, Digest = digest,
            DiskPath = published.DiskPath, Dir = published.Dir,
            ConfigJson = ImageConfigs.ToJson(ImageConfigs.FromOci(published.Config)),
            ContentBytes = published.ContentBytes, DiskBytes = published.DiskBytes, CreatedAt = DateTimeOffset.UtcNow,
            // The old directory stays: overlays of running sandboxes may be backed by it.
            PreviousIds = replacing is null ? [] : [.. replacing.PreviousIds, replacing.Id],
        };
        try
        {
            await _images.UpsertAsync(row, CancellationToken.None);
        }
        catch
        {
            _builder.Delete(published.Id);
            throw;
        }
        _log.LogInformation("image {Name} published as {Id} ({Source}, {Digest})", name, published.Id, source, digest ?? "-");
        return row;
    }

    /// <summary>Starts or joins the operation for a name and answers as the caller asked (wait or 202).</summary>
    private async Task<ImageAnswer> RunAsync(string key, string source, bool wait, CancellationToken ct,
        Func<ImageOperation, CancellationToken, Task<(ImageRecord Row, bool Existing)>> body)
    {
        ImageOperation op;
        lock (_opsGate)
        {
            if (!_ops.TryGetValue(key, out op!) || !op.IsActive || !op.TryJoin(wait))
            {
                op = new ImageOperation(key, source, _shutdown.Token);
                op.TryJoin(wait);
                if (!key.StartsWith("import:", StringComparison.Ordinal)) op.NameKnown.TrySetResult();
                _ops[key] = op;
                _failed.TryRemove(key, out _);
                var started = op;
                started.Task = Task.Run(async () =>
                {
                    // Every waiter sees the same API error, whatever layer failed.
                    try { return await body(started, started.Cts.Token); }
                    catch (Exception ex) { throw Translate(ex); }
                });
                _ = started.Task.ContinueWith(t => Finished(key, started, t), TaskScheduler.Default);
            }
        }

        if (!wait)
        {
            try { await op.NameKnown.Task.WaitAsync(ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { throw; }
            catch { /* the failure is reported below */ }
            if (op.Task.IsCompleted) return new ImageAnswer(await AnswerAsync(op), ImageOutcome.Accepted);
            return new ImageAnswer(op.Describe(), ImageOutcome.Accepted);
        }

        try
        {
            var (row, existing) = await op.Task.WaitAsync(ct);
            return new ImageAnswer(ToContract(row), existing ? ImageOutcome.Existing : ImageOutcome.Created);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            op.Leave();
            throw;
        }
    }

    /// <summary>The image an already finished operation produced (or its error).</summary>
    private static async Task<Image> AnswerAsync(ImageOperation op)
    {
        var (row, _) = await op.Task;
        return ToContract(row);
    }

    private void Finished(string key, ImageOperation op, Task<(ImageRecord Row, bool Existing)> t)
    {
        op.NameKnown.TrySetResult();
        lock (_opsGate)
        {
            if (_ops.TryGetValue(key, out var current) && ReferenceEquals(current, op)) _ops.Remove(key);
        }
        // A pull every client gave up on (or the daemon stopping) is not a failure worth reporting.
        var cancelled = op.Cts.IsCancellationRequested;
        if (t.IsFaulted && !cancelled)
        {
            var ex = Translate(t.Exception!.GetBaseException());
            _failed[op.Name] = (new ProblemSummary(ex.Code, ex.Message), op.Source, DateTimeOffset.UtcNow);
            _log.LogWarning("image operation for {Name} failed: {Code}: {Message}", op.Name, ex.Code, ex.Message);
        }
        if (cancelled) _log.LogInformation("image operation for {Name} cancelled: no client is waiting for it", op.Name);
        op.Complete();
        PruneFailed();
    }

    private void PruneFailed()
    {
        var cutoff = DateTimeOffset.UtcNow - FailedRetention;
        foreach (var (name, f) in _failed)
            if (f.At < cutoff) _failed.TryRemove(name, out _);
    }

    private static IProgress<PullProgress> Progress(ImageOperation op) => new InlineProgress<PullProgress>(p =>
    {
        op.SetPhase(p.Phase);
        op.SetLayers(p.Layers.Select(l => new LayerStatus { Digest = l.Digest, Size = l.Size, Done = l.Done, State = l.State }));
    });

    // ---------------------------------------------------------------- catalog

    public async Task<IReadOnlyList<Image>> ListAsync(CancellationToken ct)
    {
        var list = new List<Image> { BaseImage() };
        var rows = await _images.ListAsync(ct);
        list.AddRange(rows.Select(r => ToContract(r) with { Layers = null }));
        var names = rows.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var op in ActiveOps())
            if (op.NameKnown.Task.IsCompleted && names.Add(op.Name))
                list.Add(op.Describe() with { Layers = null });
        return list;
    }

    public async Task<Image> GetAsync(string name, CancellationToken ct)
    {
        if (IsBase(name)) return BaseImage();
        foreach (var candidate in Candidates(name))
        {
            if (ActiveOps().FirstOrDefault(o => o.Name == candidate && o.NameKnown.Task.IsCompleted) is { } op) return op.Describe();
            if (await _images.GetAsync(candidate, ct) is { } row) return ToContract(row);
            if (_failed.TryGetValue(candidate, out var f) && f.At > DateTimeOffset.UtcNow - FailedRetention)
                return new Image { Name = candidate, State = ImageStates.Failed, Source = f.Source, Error = f.Error, CreatedAt = f.At };
        }
        throw NotFound(name);
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        if (IsBase(name))
            throw new BoughException(ErrorCodes.Conflict, $"'{BaseName}' is the built-in image and cannot be deleted");
        var row = await FindRowAsync(name, ct);
        if (row is null)
        {
            if (Candidates(name).Any(c => ActiveOps().Any(o => o.Name == c)))
                throw new BoughException(ErrorCodes.Conflict, $"image '{name}' is still being pulled; delete it once it is ready");
            // A failed operation is forgotten on delete, so `rm` of what GET shows as failed works.
            if (Candidates(name).Any(c => _failed.TryRemove(c, out _))) return;
            throw NotFound(name);
        }

        var nameLock = NameLock(row.Name);
        await nameLock.WaitAsync(ct);
        try
        {
            var users = await UsersAsync(row.Name, ct);
            if (users.Count > 0)
                throw new BoughException(ErrorCodes.ImageInUse,
                    $"image '{row.Name}' is used by {string.Join("; ", users)}; delete those first");
            // Row first: from here on nothing can resolve the image; then its directories.
            await _images.DeleteAsync(row.Name, CancellationToken.None);
            foreach (var id in row.PreviousIds.Append(row.Id))
            {
                try { _builder.Delete(id); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _log.LogWarning(ex, "could not remove image directory {Id}; start-up will retry", id);
                }
            }
            _log.LogInformation("image {Name} deleted", row.Name);
        }
        finally { nameLock.Release(); }
    }

    /// <summary>Sandboxes, snapshots and templates naming the image, plus creates holding a lease on it.</summary>
    private async Task<List<string>> UsersAsync(string name, CancellationToken ct)
    {
        var users = new List<string>();
        var sandboxes = (await _sandboxes.ListAsync(ct)).Where(s => s.Image == name).Select(s => s.Id).ToList();
        if (_leases.TryGetValue(name, out var n) && n > 0) users.Add($"{n} sandbox(es) being created");
        if (sandboxes.Count > 0) users.Add("sandboxes " + string.Join(", ", sandboxes));
        var snaps = (await _snapshots.ListAsync(ct)).Where(s => s.Image == name).Select(s => s.Id).ToList();
        if (snaps.Count > 0) users.Add("snapshots " + string.Join(", ", snaps));
        var templates = (await _templates.ListAsync(ct)).Where(t => t.Image == name).Select(t => t.Name).ToList();
        if (templates.Count > 0) users.Add("templates " + string.Join(", ", templates));
        return users;
    }

    // ---------------------------------------------------------------- for the engine

    /// <summary>
    /// Resolves a name for a boot and holds a lease on it (delete answers 409 while held), so the
    /// image cannot be removed before the sandbox row that names it exists. Dispose after that insert.
    /// </summary>
    internal async Task<ImageLease> AcquireAsync(string name, CancellationToken ct)
    {
        if (IsBase(name))
            return new ImageLease(new BootImage(BaseName, _host.BaseImage.DiskPath, new ImageConfig()), null);
        var row = await FindRowAsync(name, ct) ?? throw NotFound(name);
        var nameLock = NameLock(row.Name);
        await nameLock.WaitAsync(ct);
        try
        {
            // Re-read under the lock: a delete may have won the race.
            row = await _images.GetAsync(row.Name, ct) ?? throw NotFound(name);
            _leases.AddOrUpdate(row.Name, 1, (_, n) => n + 1);
            return new ImageLease(new BootImage(row.Name, row.DiskPath, ImageConfigs.FromJson(row.ConfigJson)),
                () => _leases.AddOrUpdate(row.Name, 0, (_, n) => n - 1));
        }
        finally { nameLock.Release(); }
    }

    /// <summary>The exec defaults of an image a sandbox was created from (empty for base or an image gone since).</summary>
    internal async Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct)
    {
        if (IsBase(name)) return new ImageConfig();
        var row = await _images.GetAsync(name, ct);
        return row is null ? new ImageConfig() : ImageConfigs.FromJson(row.ConfigJson);
    }

    /// <summary>Start-up: drop staging leftovers (image builds, blob downloads) and published directories no row accounts for.</summary>
    internal async Task RecoverAsync(CancellationToken ct)
    {
        _builder.CleanStaging();
        _blobs.CleanStaging();
        var rows = await _images.ListAsync(ct);
        var known = rows.SelectMany(r => r.PreviousIds.Append(r.Id)).ToHashSet(StringComparer.Ordinal);
        foreach (var id in _builder.ListPublishedIds())
        {
            if (known.Contains(id)) continue;
            _log.LogWarning("removing image directory {Id}: no catalog row (interrupted publish or delete)", id);
            try { _builder.Delete(id); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { _log.LogWarning(ex, "could not remove image {Id}", id); }
        }
    }

    /// <summary>Cancels operations in progress (the daemon is stopping).</summary>
    internal void BeginShutdown() => _shutdown.Cancel();

    // ---------------------------------------------------------------- helpers

    private bool IsBase(string name) => name == "base" || name == BaseName;

    /// <summary>The name as given, then as a normalised reference (<c>busybox</c> → <c>docker.io/library/busybox:latest</c>).</summary>
    private static IEnumerable<string> Candidates(string name)
    {
        yield return name;
        string? normalised = null;
        try { normalised = ImageReference.Parse(name).ToString(); }
        catch (ImageException) { }
        catch (ArgumentException) { }
        if (normalised is not null && normalised != name) yield return normalised;
    }

    private async Task<ImageRecord?> FindRowAsync(string name, CancellationToken ct)
    {
        foreach (var c in Candidates(name))
            if (await _images.GetAsync(c, ct) is { } row) return row;
        return null;
    }

    private IReadOnlyList<ImageOperation> ActiveOps()
    {
        lock (_opsGate) return _ops.Values.Where(o => !o.Task.IsCompleted).ToList();
    }

    private SemaphoreSlim NameLock(string name) => _nameLocks.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));

    private static BoughException NotFound(string name) =>
        new(ErrorCodes.ImageNotFound, $"no image named '{name}'; pull it first: bough pull {name}");

    private static ImageReference ParseReference(string reference)
    {
        try { return ImageReference.Parse(reference); }
        catch (ImageException ex) { throw Translate(ex); }
    }

    private static long? DiskSize(int? mib)
    {
        if (mib is null) return null;
        if (mib is < 64 or > 1024 * 1024) throw BoughException.Invalid($"diskSizeMiB must be between 64 and {1024 * 1024} (got {mib})");
        return (long)mib.Value << 20;
    }

    private void ValidateName(string name)
    {
        if (!NamePattern().IsMatch(name) || name.Contains("..", StringComparison.Ordinal))
            throw BoughException.Invalid($"image name '{name}' is not valid: 1-255 characters of letters, digits and . _ - / : @ +, starting with a letter or digit");
        if (IsBase(name)) throw new BoughException(ErrorCodes.ImageExists, $"'{name}' is the built-in image's name");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")]
    private static partial Regex NamePattern();

    /// <summary>Maps the image layer's errors to API errors; anything unexpected is a failed build, not a 500.</summary>
    internal static BoughException Translate(Exception ex) => ex switch
    {
        BoughException b => b,
        ImageException { Code: var code } ie => new BoughException(KnownCode(code), ie.Message, ie),
        SetupException s => new BoughException(ErrorCodes.ImageBuildFailed, s.Message, s),
        OperationCanceledException => new BoughException(ErrorCodes.ImageBuildFailed, "the operation was cancelled (daemon stopping or every client gave up)", ex),
        _ => new BoughException(ErrorCodes.ImageBuildFailed, $"{ex.GetType().Name}: {ex.Message}", ex),
    };

    private static string KnownCode(string code) => code switch
    {
        ErrorCodes.ImageRefNotFound or ErrorCodes.RegistryUnauthorized or ErrorCodes.RegistryUnavailable
            or ErrorCodes.ImageCorrupt or ErrorCodes.LayerRejected or ErrorCodes.ImageUnsupported
            or ErrorCodes.ImageBuildFailed or ErrorCodes.InvalidRequest => code,
        _ => ErrorCodes.ImageBuildFailed,
    };

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

    private static Image ToContract(ImageRecord r) => new()
    {
        Name = r.Name, State = ImageStates.Ready, Source = r.Source, Digest = r.Digest,
        ContentBytes = r.ContentBytes, DiskBytes = r.DiskBytes, Config = ImageConfigs.FromJson(r.ConfigJson),
        CreatedAt = r.CreatedAt,
    };

    /// <summary>Removes a staging root and the per-build work directory the builder made around it.</summary>
    private void DeleteStaging(string root)
    {
        var work = Path.GetDirectoryName(Path.GetFullPath(root));
        var insideStaging = work is not null && Path.GetDirectoryName(work) == Path.GetFullPath(_builder.StagingRoot);
        TryDeleteDirectory(insideStaging ? work! : root);
    }

    private void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { _log.LogWarning(ex, "could not remove {Dir}", dir); }
    }
}

/// <summary>A resolved image held against deletion until disposed.</summary>
internal sealed class ImageLease(BootImage image, Action? release) : IDisposable
{
    private Action? _release = release;
    public BootImage Image { get; } = image;
    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}
