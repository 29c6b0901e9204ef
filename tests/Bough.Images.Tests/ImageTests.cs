using System.Diagnostics;
using Bough.HostSetup;
using Xunit.Abstractions;
using Bough.Images.Publish;

namespace Bough.Images.Tests;

/// <summary>A shell script standing in for the agent while the real one is not available.</summary>
public static class StandInAgent
{
    public const string StartedLine = "bough-agent stand-in: started";

    /// <summary>
    /// Besides announcing itself, it asks the guest's dynamic loader to resolve libstdc++'s
    /// dependencies with no ld.so.cache, which proves the copied host libraries are found.
    /// </summary>
    public static string Write(string dir, string extra = "")
    {
        var path = Path.Combine(dir, "bough-agent-standin");
        File.WriteAllText(path, $"""
            #!/bin/sh
            echo "{StartedLine}"
            /lib64/ld-linux-x86-64.so.2 --list /lib/x86_64-linux-gnu/libstdc++.so.6 | sed 's/^/standin-ldd: /'
            echo "standin-env: DOTNET_BUNDLE_EXTRACT_BASE_DIR=$DOTNET_BUNDLE_EXTRACT_BASE_DIR"
            echo "standin-ports: $(ls /dev/virtio-ports)"
            echo "standin-net: $(ip -4 addr show eth0 | grep inet) $(ip route | grep default)"
            exec sleep 3600
            # {extra}
            """ + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }
}

[Collection("guest")]
public class ImageTests(GuestFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Base_image_is_cached_and_rebuilt_only_when_an_input_changes()
    {
        using var tmp = new TempDir();
        var agent = StandInAgent.Write(tmp.Path);
        var data = Path.Combine(tmp.Path, "data");

        var sw = Stopwatch.StartNew();
        var first = await new BaseImageBuilder(data, fx.Kernel, agent).EnsureBaseAsync(null, CancellationToken.None);
        output.WriteLine($"first build: {sw.Elapsed.TotalSeconds:0.0} s, {new FileInfo(first.DiskPath).Length >> 20} MiB qcow2");
        Assert.True(File.Exists(first.DiskPath));
        Assert.StartsWith(Path.Combine(data, "images", "base") + "/", first.DiskPath);
        var info = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", first.DiskPath]);
        Assert.Contains("\"format\": \"qcow2\"", info.Stdout);
        Assert.Contains("\"virtual-size\": 2147483648", info.Stdout);

        sw.Restart();
        var second = await new BaseImageBuilder(data, fx.Kernel, agent).EnsureBaseAsync(null, CancellationToken.None);
        output.WriteLine($"second ensure: {sw.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(first, second);

        // A different agent binary is a different image; the old one stays for overlays that use it.
        StandInAgent.Write(tmp.Path, extra: "v2");
        var a = new BaseImageBuilder(data, fx.Kernel, agent);
        var b = new BaseImageBuilder(data, fx.Kernel, agent);
        sw.Restart();
        var results = await Task.WhenAll(a.EnsureBaseAsync(null, CancellationToken.None), a.EnsureBaseAsync(null, CancellationToken.None),
            b.EnsureBaseAsync(null, CancellationToken.None));
        output.WriteLine($"rebuild after agent change: {sw.Elapsed.TotalSeconds:0.0} s");
        Assert.All(results, r => Assert.Equal(results[0], r));
        Assert.NotEqual(first.InputHash, results[0].InputHash);
        Assert.NotEqual(first.DiskPath, results[0].DiskPath);
        Assert.True(File.Exists(first.DiskPath));
        Assert.Equal(results[0], a.TryGet("base"));
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(data, "images", "base")).Length);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(data, "images", ".staging")));
    }

    [Fact]
    public async Task Failed_build_leaves_nothing_behind()
    {
        using var tmp = new TempDir();
        var agent = StandInAgent.Write(tmp.Path);
        var data = Path.Combine(tmp.Path, "data");
        var builder = new BaseImageBuilder(data, fx.Kernel, agent, null, new BaseImageOptions { DiskSizeBytes = 1L << 62 });
        var e = await Assert.ThrowsAnyAsync<Exception>(() => builder.EnsureBaseAsync(null, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Contains("mkfs.ext4", e.Message);
        Assert.Null(builder.TryGet("base"));
        Assert.False(Directory.Exists(Path.Combine(data, "images", "base")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(data, "images", ".staging")));
    }

    [Fact]
    public async Task Missing_agent_is_a_clear_error()
    {
        using var tmp = new TempDir();
        var builder = new BaseImageBuilder(tmp.Path, fx.Kernel, Path.Combine(tmp.Path, "nope"));
        var e = await Assert.ThrowsAsync<SetupException>(() => builder.EnsureBaseAsync(null, CancellationToken.None));
        Assert.Contains("nope", e.Message);
        Assert.Contains(AgentLocator.EnvironmentVariable, e.Message);
    }

    [Fact]
    public async Task Cancelled_build_leaves_nothing_behind()
    {
        using var tmp = new TempDir();
        var agent = StandInAgent.Write(tmp.Path);
        var data = Path.Combine(tmp.Path, "data");
        var builder = new BaseImageBuilder(data, fx.Kernel, agent);
        // The only waiter gives up at once, so the coalesced build is cancelled too.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => builder.EnsureBaseAsync(null, new CancellationToken(true)));
        // The build notices cancellation at its next step; give it a moment to clean up.
        for (var i = 0; i < 100 && Directory.Exists(Path.Combine(data, "images", ".staging")) &&
                        Directory.EnumerateFileSystemEntries(Path.Combine(data, "images", ".staging")).Any(); i++)
            await Task.Delay(100);
        await Task.Delay(500);
        Assert.Null(builder.TryGet("base"));
        var staging = Path.Combine(data, "images", ".staging");
        Assert.True(!Directory.Exists(staging) || !Directory.EnumerateFileSystemEntries(staging).Any());
    }
}
