using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Images;
using Bough.Engine.Setup;

namespace Bough.Engine.Boot;

/// <summary>The images a boot can use, seen from the lifecycle (the pipeline that makes them is <see cref="ImageService"/>).</summary>
public interface IBootImages
{
    /// <summary>Resolves <paramref name="name"/> and keeps it from being deleted until the lease is disposed (after the sandbox row names it).</summary>
    Task<IBootImageLease> AcquireAsync(string name, CancellationToken ct);

    /// <summary>The image's exec defaults (Env, WorkingDir, User, Entrypoint, Cmd).</summary>
    Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct);

    /// <summary>
    /// The disk a boot of the image named <paramref name="name"/> (as a lease names it) would use now; null when it
    /// no longer exists. Takes no lock or lease: it tells whether something made from an older version is stale.
    /// </summary>
    Task<string?> CurrentDiskAsync(string name, CancellationToken ct);
}

public interface IBootImageLease : IDisposable
{
    string Name { get; }
    string DiskPath { get; }
    ImageConfig Config { get; }
}

/// <summary>The real <see cref="IBootImages"/>: <see cref="ImageService"/>'s leases.</summary>
internal sealed class ImageServiceBootImages(ImageService images, ImageStore rows, PreparedHost host) : IBootImages
{
    public async Task<IBootImageLease> AcquireAsync(string name, CancellationToken ct) => new Lease(await images.AcquireAsync(name, ct));

    public Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct) => images.GetConfigAsync(name, ct);

    /// <summary>The built-in image's disk, or the published row's (a lease names images by these).</summary>
    public async Task<string?> CurrentDiskAsync(string name, CancellationToken ct) =>
        name == host.BaseImage.Name || name == "base" ? host.BaseImage.DiskPath : (await rows.GetAsync(name, ct))?.DiskPath;

    private sealed class Lease(ImageLease lease) : IBootImageLease
    {
        public string Name => lease.Image.Name;
        public string DiskPath => lease.Image.DiskPath;
        public ImageConfig Config => lease.Image.Config;
        public void Dispose() => lease.Dispose();
    }
}
