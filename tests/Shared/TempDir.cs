namespace Bough.TestSupport;

/// <summary>
/// A fresh, empty directory, removed with everything in it at dispose. It lives under /tmp (not
/// $TMPDIR) with a short name because tests put Unix sockets in it, and a socket path must fit
/// in 108 bytes.
/// </summary>
public sealed class TempDir : IDisposable
{
    /// <param name="prefix">Names the directory after its test (bough-PREFIX-xxxxxxxxxx), for whoever finds one left over.</param>
    public TempDir(string prefix = "test")
    {
        Path = System.IO.Path.Combine("/tmp", $"bough-{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        // Best effort: a test that left a file open or chmod-ed something must not fail on cleanup.
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
