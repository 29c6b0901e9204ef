using Bough.Contracts;
using Bough.Engine.Boot;

namespace Bough.Engine.Tests.Fakes;

/// <summary>
/// A fake <see cref="IBootImages"/>: the real images need a built rootfs (mkfs, qemu-img), which
/// a VM-less test does not. Knows one image, "base", whose disk is an empty temp file.
/// </summary>
internal sealed class FakeBootImages(string diskPath) : IBootImages
{
    public const string Base = "base";

    /// <summary>The exec defaults of "base"; an Env entry and a WorkingDir let tests see the merge with the sandbox's env.</summary>
    public ImageConfig Config { get; set; } = new() { Env = ["PATH=/usr/bin:/bin", "GREETING=image"], WorkingDir = "/srv" };

    public int Leased => Volatile.Read(ref _leased);
    private int _leased;

    public Task<IBootImageLease> AcquireAsync(string name, CancellationToken ct)
    {
        Check(name);
        Interlocked.Increment(ref _leased);
        return Task.FromResult<IBootImageLease>(new Lease(this, name, DiskPath, Config));
    }

    public Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct)
    {
        Check(name);
        return Task.FromResult(Config);
    }

    /// <summary>Null once a test has "deleted" the image (<see cref="Deleted"/>).</summary>
    public Task<string?> CurrentDiskAsync(string name, CancellationToken ct) =>
        Task.FromResult(name == Base && !Deleted ? DiskPath : null);

    /// <summary>The disk "base" boots from; a test "re-pulls" the image by pointing this at another file.</summary>
    public string DiskPath { get; set; } = diskPath;

    /// <summary>Pretends the image was deleted (its boot snapshots become stale).</summary>
    public bool Deleted { get; set; }

    private static void Check(string name)
    {
        if (name != Base) throw new BoughException(ErrorCodes.ImageNotFound, $"no image '{name}'");
    }

    private sealed class Lease(FakeBootImages owner, string name, string diskPath, ImageConfig config) : IBootImageLease
    {
        private int _disposed;
        public string Name => name;
        public string DiskPath => diskPath;
        public ImageConfig Config => config;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref owner._leased);
        }
    }
}
