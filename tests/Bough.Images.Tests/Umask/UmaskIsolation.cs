using Bough.HostSetup;

namespace Bough.Images.Tests.Umask;

/// <summary>
/// Tests that change the process umask. The mask is process-wide, so this collection never runs in parallel with
/// anything (xunit runs such collections alone, after the parallel ones), and each test restores the mask.
/// </summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class UmaskIsolation
{
    public const string Collection = "process umask";
}

/// <summary>Sets the process umask for a using block and restores the previous one at dispose.</summary>
public sealed class UmaskScope : IDisposable
{
    private readonly UnixFileMode _previous;

    public UmaskScope(UnixFileMode mask) => _previous = ProcessUmask.Set(mask);

    public void Dispose() => ProcessUmask.Set(_previous);
}
