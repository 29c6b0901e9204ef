using System.Diagnostics;
using Bough.HostSetup;
using Bough.Images;
using Bough.Images.Kernel;

namespace Bough.Images.Tests;

/// <summary>
/// Shared state for tests that need the real guest kernel. The data dir is a per-machine cache
/// (override with BOUGH_TEST_DATA) so the ~27 MB kernel is downloaded once, not per run.
/// </summary>
public sealed class GuestFixture : IAsyncLifetime
{
    public static string CacheDataDir =>
        Environment.GetEnvironmentVariable("BOUGH_TEST_DATA") is { Length: > 0 } d ? d : "/var/tmp/bough-test-cache/data";

    public GuestKernel Kernel { get; private set; } = null!;
    public TimeSpan KernelEnsureTime { get; private set; }
    public bool KernelWasCached { get; private set; }

    public async Task InitializeAsync()
    {
        var provider = new KernelProvider(CacheDataDir);
        KernelWasCached = provider.TryGet() is not null;
        var sw = Stopwatch.StartNew();
        Kernel = await provider.EnsureAsync(null, CancellationToken.None);
        KernelEnsureTime = sw.Elapsed;
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition("guest")]
public sealed class GuestFixtureDefinition : ICollectionFixture<GuestFixture>;

/// <summary>Temporary directory removed at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bough-images-test-").FullName;
    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// Boots QEMU microvm under TCG with the serial console in a file and waits for a line. Always kills QEMU.
/// </summary>
public static class Qemu
{
    public sealed record BootResult(bool Matched, string Console, string Stderr, TimeSpan Elapsed, bool Exited);

    public static async Task<BootResult> BootAsync(GuestKernel kernel, string extraAppend, IEnumerable<string> extraArgs,
        string workDir, Func<string, bool> until, TimeSpan timeout, Func<Task>? afterStart = null)
    {
        var console = System.IO.Path.Combine(workDir, $"console-{Guid.NewGuid():N}.log");
        var psi = new ProcessStartInfo("qemu-system-x86_64")
        {
            RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1", "-no-reboot",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", kernel.KernelPath, "-initrd", kernel.InitrdPath,
            "-append", (kernel.CommandLine + " " + extraAppend).Trim(),
            "-serial", "file:" + console,
        }.Concat(extraArgs)) psi.ArgumentList.Add(a);

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            if (afterStart is not null) await afterStart();
            while (sw.Elapsed < timeout)
            {
                var text = File.Exists(console) ? await ReadShared(console) : "";
                if (until(text)) return new BootResult(true, text, "", sw.Elapsed, p.HasExited);
                if (p.HasExited)
                {
                    text = File.Exists(console) ? await ReadShared(console) : "";
                    return new BootResult(until(text), text, await stderr, sw.Elapsed, true);
                }
                await Task.Delay(100);
            }
            return new BootResult(false, File.Exists(console) ? await ReadShared(console) : "", "", sw.Elapsed, false);
        }
        finally
        {
            CommandRunner.Kill(p);
            await p.WaitForExitAsync();
        }
    }

    private static async Task<string> ReadShared(string path)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var r = new StreamReader(fs);
        return await r.ReadToEndAsync();
    }
}
