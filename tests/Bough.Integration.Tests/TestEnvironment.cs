using System.Diagnostics;

namespace Bough.Integration.Tests;

/// <summary>
/// Where integration tests keep state. The guest kernel download and the base image build
/// are cached in one shared directory (BOUGH_TEST_CACHE, default /var/tmp/bough-test-cache)
/// so only the first daemon of a machine pays for them; every daemon still gets its own
/// fresh data directory (catalog, sandboxes) that links to that cache.
/// </summary>
public static class TestEnvironment
{
    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("BOUGH_TEST_CACHE") is { Length: > 0 } c ? c : "/var/tmp/bough-test-cache";

    /// <summary>The data dir whose kernel/ and images/ every test daemon links to.</summary>
    public static string SharedDataDir => Path.Combine(CacheRoot, "daemon-data");

    /// <summary>
    /// A new, empty data directory that reuses the shared kernel and base image. <c>images/</c>
    /// itself is the daemon's own (only <c>images/base</c> and the base builder's lock are
    /// links): pulled images belong to one catalog, and a daemon removes published image
    /// directories its catalog does not know, which must never hit another test daemon's.
    /// </summary>
    public static string NewDataDir()
    {
        var dir = Path.Combine("/tmp", "bough-it-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(SharedDataDir);
        foreach (var shared in new[] { "kernel", "cache" })
        {
            var target = Path.Combine(SharedDataDir, shared);
            Directory.CreateDirectory(target);
            Directory.CreateSymbolicLink(Path.Combine(dir, shared), target);
        }
        var sharedImages = Path.Combine(SharedDataDir, "images");
        Directory.CreateDirectory(Path.Combine(sharedImages, "base"));
        var sharedLock = Path.Combine(sharedImages, ".lock");
        if (!File.Exists(sharedLock)) File.WriteAllBytes(sharedLock, []);
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        Directory.CreateSymbolicLink(Path.Combine(images, "base"), Path.Combine(sharedImages, "base"));
        Directory.CreateSymbolicLink(Path.Combine(images, ".lock"), sharedLock);
        return dir;
    }

    /// <summary>PIDs of QEMU processes whose command line mentions the given path.</summary>
    public static IReadOnlyList<int> QemuProcessesUnder(string path)
    {
        var found = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid)) continue;
            try
            {
                var cmd = File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
                if (cmd.Contains("qemu-system", StringComparison.Ordinal) && cmd.Contains(path, StringComparison.Ordinal)
                    && HostProcess.IsAlive(pid))
                    found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}
