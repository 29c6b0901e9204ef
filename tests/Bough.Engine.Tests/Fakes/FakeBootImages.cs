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
        return Task.FromResult<IBootImageLease>(new Lease(this, name, diskPath, Config));
    }

    public Task<ImageConfig> GetConfigAsync(string name, CancellationToken ct)
    {
        Check(name);
        return Task.FromResult(Config);
    }

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
