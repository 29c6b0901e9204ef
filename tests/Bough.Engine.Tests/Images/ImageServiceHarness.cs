using Bough.Catalog;
using Bough.Engine.Events;
using Bough.Engine.Images;
using Bough.Engine.Setup;
using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.TestSupport.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Engine.Tests.Images;

/// <summary>
/// A real <see cref="ImageService"/> over a temp data dir: SQLite catalog, blob store, the real
/// importer and builder (mkfs.ext4, qemu-img). No VM boots, so the "agent" injected into images is
/// any dynamically linked host binary (its ELF interpreter is patched like the agent's).
/// <see cref="HoldAgent"/> turns that file into a FIFO, so a publish blocks inside its build (in
/// <c>/.bough</c> injection) until the test releases it: a real slow step, no seam in the product.
/// </summary>
internal sealed class ImageServiceHarness : IDisposable
{
    private const string HostBinary = "/bin/true";

    private ImageServiceHarness(string dir, CatalogDb db, ImageService images, GuestImageBuilder builder, EventBus events)
    {
        Events = events;
        Dir = dir;
        Db = db;
        Images = images;
        Builder = builder;
    }

    public string Dir { get; }
    public CatalogDb Db { get; }
    public ImageService Images { get; }
    public GuestImageBuilder Builder { get; }

    /// <summary>The real event bus the service publishes image events on.</summary>
    public EventBus Events { get; }
    public string AgentPath => Path.Combine(Dir, "agent");

    /// <summary>Where imports may read from: the default <c>&lt;data&gt;/import</c>.</summary>
    public string ImportDir => Path.Combine(Dir, "data", "import");

    /// <param name="limits">Caps for the service's flattening; the defaults when null.</param>
    public static async Task<ImageServiceHarness> StartAsync(Bough.Images.ImageLimits? limits = null)
    {
        var dir = Directory.CreateTempSubdirectory("bough-engine-images-").FullName;
        var data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        File.Copy(HostBinary, Path.Combine(dir, "agent"));
        var db = new CatalogDb(Path.Combine(data, "bough.db"));
        await db.MigrateAsync(CancellationToken.None);
        var blobs = new BlobStore(data);
        var builder = new GuestImageBuilder(data, Path.Combine(dir, "agent"), HostRequirements.BusyboxPath);
        var host = new PreparedHost(new GuestKernel("/nonexistent/vmlinuz", "/nonexistent/initrd.img", "test", ""),
            new BaseImage("base", "/nonexistent/base.qcow2", "test", DateTimeOffset.UnixEpoch), new AccelDecision("tcg", "test"),
            Path.Combine(dir, "agent"));
        var events = new EventBus(TimeProvider.System);
        var images = new ImageService(host, new EngineOptions { DataDir = data }, new ImageStore(db), new SandboxStore(db), new SnapshotStore(db), new TemplateStore(db),
            builder, blobs, new OciPuller(blobs, new RegistryOptions()), new OciArchiveImporter(blobs),
            NullLogger<ImageService>.Instance, limits, events: events);
        return new ImageServiceHarness(dir, db, images, builder, events);
    }

    /// <summary>
    /// An OCI layout of the host busybox plus a file whose content makes the manifest digest unique, in
    /// the import directory (or under <paramref name="parent"/>).
    /// </summary>
    public string Layout(string tag, string? parent = null)
    {
        var layout = new OciLayoutBuilder(Path.Combine(parent ?? ImportDir, "layout-" + tag));
        var image = layout.AddImage(TestImages.Busybox(new LayerSpec([TarItem.File("etc/version", tag + "\n")])));
        layout.Tag(image.Manifest, tag);
        return layout.Dir;
    }

    /// <summary>Imports <paramref name="layoutDir"/> as <paramref name="name"/> and waits for it.</summary>
    public Task<ImageAnswer> ImportAsync(string name, string layoutDir, CancellationToken ct = default) =>
        Images.ImportAsync(new Bough.Contracts.ImportImageRequest { Path = layoutDir, Name = name }, wait: true, ct);

    /// <summary>From now on a build blocks when it reads the agent, until <see cref="AgentHold.Release"/>.</summary>
    public AgentHold HoldAgent() => new(AgentPath);

    /// <summary>Whether a build has got as far as the agent copy (busybox already in its staging <c>/.bough</c>).</summary>
    public bool BuildReachedAgent() =>
        Directory.Exists(Builder.StagingRoot) &&
        Directory.EnumerateFiles(Builder.StagingRoot, "busybox", SearchOption.AllDirectories)
            .Any(f => f.Contains("/.bough/bin/", StringComparison.Ordinal) && new FileInfo(f).Length == new FileInfo(HostRequirements.BusyboxPath).Length);

    public void Dispose()
    {
        Images.Dispose();
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The agent file replaced by a FIFO; <see cref="Release"/> feeds the real bytes to the (one) blocked reader.</summary>
    internal sealed class AgentHold : IDisposable
    {
        private readonly string _path;
        private readonly byte[] _bytes;
        private Task? _release;

        public AgentHold(string path)
        {
            _path = path;
            _bytes = File.ReadAllBytes(path);
            File.Delete(path);
            CommandRunner.RunCheckedAsync("mkfifo", [path]).GetAwaiter().GetResult();
        }

        /// <summary>Lets the blocked build go on (opening the FIFO for writing waits for its reader).</summary>
        public Task Release() => _release ??= Task.Run(async () =>
        {
            await File.WriteAllBytesAsync(_path, _bytes);
        });

        /// <summary>Never leaves a build blocked forever (a failing test), then puts the regular file back.</summary>
        public void Dispose()
        {
            if (Release().Wait(TimeSpan.FromSeconds(10)))
            {
                File.Delete(_path);
                File.WriteAllBytes(_path, _bytes);
            }
        }
    }
}
