using System.Diagnostics;
using Bough.HostSetup;
using Bough.Images.Oci;

namespace Bough.Images.Rootfs;

/// <summary>Built-in image recipes (<c>bough images build NAME</c>).</summary>
public static class ImageRecipes
{
    public const string DebianPython = "debian-python";

    public static IReadOnlyList<string> Names { get; } = [DebianPython];

    public const string DefaultMirror = "http://deb.debian.org/debian";

    /// <summary>Lays out the recipe's root filesystem in <paramref name="rootDir"/> (e.g. debootstrap) and returns its config.</summary>
    /// <exception cref="ImageException">invalid_request (unknown recipe), image_build_failed (not root, debootstrap missing or failing).</exception>
    public static Task<OciImageConfig> BuildRootAsync(string recipe, string rootDir, IProgress<SetupProgress>? progress, CancellationToken ct) =>
        recipe switch
        {
            DebianPython => DebianPythonAsync(rootDir, progress, ct),
            _ => throw new ImageException("invalid_request", $"unknown recipe '{recipe}'; known: {string.Join(", ", Names)}"),
        };

    /// <summary>
    /// Debian bookworm minbase with python3, pip and CA certificates, then apt caches/lists and docs
    /// trimmed (a sandbox runs <c>apt-get update</c> before installing, as in Docker's Debian images).
    /// debootstrap must run as root: it chroots to run maintainer scripts and creates device-owned files.
    /// </summary>
    private static async Task<OciImageConfig> DebianPythonAsync(string rootDir, IProgress<SetupProgress>? progress, CancellationToken ct)
    {
        if (!Environment.IsPrivilegedProcess)
            throw new ImageException("image_build_failed", $"recipe '{DebianPython}' runs debootstrap, which needs root; run the daemon as root");
        var debootstrap = CommandLocator.Find("debootstrap")
            ?? throw new ImageException("image_build_failed", $"recipe '{DebianPython}' needs debootstrap; install it (apt-get install debootstrap)");
        var mirror = FindHostMirror() ?? DefaultMirror;
        progress?.Report(new SetupProgress("image", $"debootstrap bookworm from {mirror}"));
        StreamingCommand.Result result;
        try
        {
            // debootstrap, and dpkg's maintainer scripts it runs, create guest files with the umask they inherit
            // (generated /etc files, state under /var): the daemon's 077 would make them owner-only in the guest.
            result = await StreamingCommand.RunAsync(debootstrap,
                ["--variant=minbase", "--include=python3,python3-pip,ca-certificates", "bookworm", rootDir, mirror],
                line => progress?.Report(new SetupProgress("image", line)), ProcessUmask.Shared, ct);
        }
        finally
        {
            // A killed debootstrap leaves /proc and /sys mounted in the target; deleting the staging
            // dir must not descend into them.
            await UnmountBelowAsync(rootDir);
        }
        if (result.ExitCode != 0)
            throw new ImageException("image_build_failed",
                $"debootstrap exited with {result.ExitCode}: {result.Tail}" + DebootstrapLog(rootDir));

        progress?.Report(new SetupProgress("image", "trimming apt caches, package lists and documentation"));
        foreach (var dir in new[] { "var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "var/log" })
            EmptyDirectory(Path.Combine(rootDir, dir));
        foreach (var stale in Directory.EnumerateFiles(Path.Combine(rootDir, "var/cache/debconf"), "*-old"))
            File.Delete(stale);

        return new OciImageConfig(
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
            "/root", null, null, ["python3"]);
    }

    /// <summary>The Debian archive the host's apt uses (one-line or deb822 sources), so a local mirror or proxy is honoured.</summary>
    public static string? FindHostMirror(string aptDir = "/etc/apt")
    {
        var files = new List<string>();
        if (File.Exists(Path.Combine(aptDir, "sources.list"))) files.Add(Path.Combine(aptDir, "sources.list"));
        var d = Path.Combine(aptDir, "sources.list.d");
        if (Directory.Exists(d))
            files.AddRange(Directory.EnumerateFiles(d).Where(f => f.EndsWith(".list") || f.EndsWith(".sources")).Order(StringComparer.Ordinal));
        foreach (var file in files)
        {
            foreach (var raw in File.ReadLines(file))
            {
                var line = raw.Trim();
                IEnumerable<string> uris = line.StartsWith("deb ", StringComparison.Ordinal)
                    ? line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Where(w => !w.StartsWith('[')).Take(1)
                    : line.StartsWith("URIs:", StringComparison.OrdinalIgnoreCase)
                        ? line[5..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
                        : [];
                foreach (var uri in uris)
                {
                    var u = uri.TrimEnd('/');
                    if ((u.StartsWith("http://", StringComparison.Ordinal) || u.StartsWith("https://", StringComparison.Ordinal))
                        && u.EndsWith("/debian", StringComparison.Ordinal))
                        return u;
                }
            }
        }
        return null;
    }

    /// <summary>Lazily unmounts every mount point at or below <paramref name="dir"/>, deepest first.</summary>
    internal static async Task UnmountBelowAsync(string dir)
    {
        var prefix = Path.GetFullPath(dir).TrimEnd('/') + "/";
        var points = File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')).Where(f => f.Length > 4).Select(f => f[4].Replace("\\040", " "))
            .Where(m => m.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(m => m.Length).ToList();
        foreach (var m in points)
            await CommandRunner.RunAsync("umount", ["-l", m], null, CancellationToken.None);
    }

    private static string DebootstrapLog(string rootDir)
    {
        var log = Path.Combine(rootDir, "debootstrap", "debootstrap.log");
        if (!File.Exists(log)) return "";
        var lines = File.ReadAllLines(log);
        return "\n--- debootstrap.log (tail):\n" + string.Join('\n', lines.TakeLast(30));
    }

    private static void EmptyDirectory(string dir)
    {
        var info = new DirectoryInfo(dir);
        if (!info.Exists || info.LinkTarget != null) return;
        foreach (var e in info.EnumerateFileSystemInfos())
        {
            if (e is DirectoryInfo sub && sub.LinkTarget == null) sub.Delete(recursive: true);
            else e.Delete();
        }
    }
}

/// <summary>Runs a long tool and hands each output line to a callback as it comes (for progress), keeping a tail for errors.</summary>
internal static class StreamingCommand
{
    public sealed record Result(int ExitCode, string Tail);

    /// <param name="umask">The umask the tool runs with (<see cref="ChildUmask"/>); null: this process's own.</param>
    public static async Task<Result> RunAsync(string fileName, IEnumerable<string> args, Action<string> onLine, UnixFileMode? umask,
        CancellationToken ct)
    {
        var psi = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (umask is { } mask) ChildUmask.Apply(psi, mask);
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        var tail = new Queue<string>();
        void Line(string? l)
        {
            if (string.IsNullOrWhiteSpace(l)) return;
            lock (tail)
            {
                tail.Enqueue(l);
                if (tail.Count > 40) tail.Dequeue();
            }
            onLine(l);
        }
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => Line(e.Data);
        p.ErrorDataReceived += (_, e) => Line(e.Data);
        p.Start();
        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await p.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            CommandRunner.Kill(p);
            await p.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        lock (tail) return new Result(p.ExitCode, string.Join('\n', tail));
    }
}
