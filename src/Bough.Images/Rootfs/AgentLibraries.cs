using Bough.HostSetup;

namespace Bough.Images.Rootfs;

/// <summary>
/// The host glibc libraries the agent (a .NET single-file app) needs in every guest: the base image
/// gets them under /lib, user images under <c>/.bough/lib</c> (<see cref="GuestRuntime"/>), so the
/// image's own libc never matters.
/// </summary>
public static class AgentLibraries
{
    /// <summary>Libraries the .NET agent loads; glibc's loader finds them in /lib/x86_64-linux-gnu without ld.so.cache.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libgcc_s.so.1", "libstdc++.so.6"];

    public const string Loader = "/lib64/ld-linux-x86-64.so.2";
    public const string GuestLibDir = "lib/x86_64-linux-gnu";

    private static readonly string[] HostLibDirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"];

    /// <summary>Host paths of <see cref="Names"/> plus the loader, keyed by guest file name.</summary>
    public static IReadOnlyDictionary<string, string> FindOnHost()
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var lib in Names)
        {
            var path = HostLibDirs.Select(d => Path.Combine(d, lib)).FirstOrDefault(File.Exists)
                ?? throw new SetupException($"host library {lib} not found in {string.Join(", ", HostLibDirs)}; the guest agent needs it");
            result[lib] = path;
        }
        if (!File.Exists(Loader)) throw new SetupException($"host dynamic loader {Loader} not found");
        result["ld-linux-x86-64.so.2"] = Loader;
        return result;
    }
}
