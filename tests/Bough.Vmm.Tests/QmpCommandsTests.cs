using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Vmm.Tests;

/// <summary>
/// The typed QMP commands against a real QEMU that never runs a guest (<c>-S</c>, no kernel): status, block
/// graph, disk switch and backing-file rewrite, device state out and back in through a passed descriptor.
/// Seconds, not a boot.
/// </summary>
public sealed class QmpCommandsTests : IDisposable
{
    private readonly TempDir _dir = new("qmpcmd");

    public void Dispose() => _dir.Dispose();

    private string PathOf(string name) => Path.Combine(_dir.Path, name);

    /// <summary>base ← mid ← top, 64 MiB.</summary>
    private async Task<string> ChainAsync()
    {
        await QemuImg.CreateAsync(PathOf("base.qcow2"), 64L << 20, CancellationToken.None);
        await QemuImg.CreateOverlayAsync(PathOf("base.qcow2"), PathOf("mid.qcow2"), CancellationToken.None);
        await QemuImg.CreateOverlayAsync(PathOf("mid.qcow2"), PathOf("top.qcow2"), CancellationToken.None);
        return PathOf("top.qcow2");
    }

    [Fact]
    public async Task Status_block_graph_cpus_memory_stop_cont_and_quit()
    {
        string top = await ChainAsync();
        await using var q = await PausedQemu.StartAsync(_dir.Path, "a", top);

        Assert.Equal(new QmpRunStatus(false, "prelaunch"), await q.Qmp.QueryStatusAsync(CancellationToken.None));
        var disk = Assert.Single(await q.Qmp.QueryBlockAsync(CancellationToken.None));
        Assert.Equal("disk0", disk.Device);
        Assert.Equal(top, disk.File);
        Assert.Equal(64L << 20, disk.VirtualSize);
        Assert.Equal([PathOf("mid.qcow2"), PathOf("base.qcow2")], disk.BackingChain);
        Assert.False(string.IsNullOrEmpty(disk.NodeName));
        Assert.Equal(top, await q.Qmp.ActiveDiskFileAsync(CancellationToken.None));
        Assert.Equal(1, await q.Qmp.QueryVcpuCountAsync(CancellationToken.None));
        Assert.Equal(128L << 20, await q.Qmp.QueryBaseMemoryBytesAsync(CancellationToken.None));

        await q.Qmp.ContAsync(CancellationToken.None);
        Assert.True((await q.Qmp.QueryStatusAsync(CancellationToken.None)).Running);
        await q.Qmp.StopAsync(CancellationToken.None);
        Assert.Equal(new QmpRunStatus(false, "paused"), await q.Qmp.QueryStatusAsync(CancellationToken.None));
        Assert.Contains("a", await q.Qmp.HumanMonitorCommandAsync("info name", CancellationToken.None));

        try { await q.Qmp.QuitAsync(CancellationToken.None); }
        catch (QmpDisconnectedException) { /* the reply may be lost with the connection */ }
        await q.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Disk_switch_then_backing_file_rewrite_keeps_plain_paths()
    {
        string top = await ChainAsync();
        await using var q = await PausedQemu.StartAsync(_dir.Path, "b", top);
        var before = Assert.Single(await q.Qmp.QueryBlockAsync(CancellationToken.None));

        // The running QEMU write-locks top: the overlay is made without opening it.
        string next = PathOf("next.qcow2");
        await QemuImg.CreateOverlayOfImageInUseAsync(top, next, before.VirtualSize!.Value, CancellationToken.None);
        await q.Qmp.BlockdevSnapshotSyncAsync(before.NodeName!, next, "n-next", CancellationToken.None);
        var after = Assert.Single(await q.Qmp.QueryBlockAsync(CancellationToken.None));
        Assert.Equal("n-next", after.NodeName);
        Assert.Equal(next, after.File);
        Assert.Equal([top, PathOf("mid.qcow2"), PathOf("base.qcow2")], after.BackingChain);

        // Publish the frozen overlay under another name (same inode) and point the header at it.
        string published = PathOf("published.qcow2");
        Assert.Equal(0, (await ProcessRunner.RunAsync("ln", [top, published], CancellationToken.None)).ExitCode);
        await q.Qmp.ChangeBackingFileAsync("n-next", published, CancellationToken.None);
        var repointed = Assert.Single(await q.Qmp.QueryBlockAsync(CancellationToken.None));
        Assert.Equal(next, repointed.File); // QEMU now reports a json: pseudo-filename for it
        Assert.Equal(published, (await QemuImg.InfoAsync(next, CancellationToken.None)).BackingFile);
        Assert.Equal(next, await q.Qmp.ActiveDiskFileAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Device_state_saved_by_one_qemu_loads_into_another_through_a_passed_descriptor()
    {
        string top = await ChainAsync();
        string state = PathOf("device state 'quoted'.bin"); // no shell anywhere: any name works
        await using (var source = await PausedQemu.StartAsync(_dir.Path, "src", top))
            await source.Qmp.SaveDeviceStateAsync(state, CancellationToken.None);
        Assert.True(new FileInfo(state).Length > 0);

        await using var target = await PausedQemu.StartAsync(_dir.Path, "dst", top,
            "-incoming", "defer", "-global", "migration.send-configuration=off");
        // Without a descriptor attached, getfd fails: the success below is the descriptor's doing.
        await Assert.ThrowsAsync<QmpException>(() =>
            target.Qmp.ExecuteAsync("getfd", new Dictionary<string, string> { ["fdname"] = "none" }, CancellationToken.None));
        using var events = target.Qmp.SubscribeEvents();
        await target.Qmp.SetMigrationCapabilitiesAsync(new Dictionary<string, bool> { ["events"] = true }, CancellationToken.None);
        Assert.Equal("", await target.Qmp.QueryMigrationStatusAsync(CancellationToken.None));
        await target.Qmp.MigrateIncomingFromFileAsync(state, CancellationToken.None);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string status;
        while ((status = await target.Qmp.QueryMigrationStatusAsync(cts.Token)) is not ("completed" or "failed"))
            await Task.Delay(20, cts.Token);
        Assert.Equal("completed", status);
        var seen = new List<string>();
        while (events.Reader.TryRead(out var ev))
            if (ev.TryGetMigrationStatus(out string s)) seen.Add(s);
        Assert.Contains("completed", seen);
        Assert.Equal("paused", (await target.Qmp.QueryStatusAsync(CancellationToken.None)).Status);
    }

    /// <summary>A QEMU child process started with <c>-S</c> and no kernel, with a disk and a QMP socket.</summary>
    private sealed class PausedQemu : IAsyncDisposable
    {
        private PausedQemu(Process process, QmpClient qmp)
        {
            Process = process;
            Qmp = qmp;
        }

        public Process Process { get; }
        public QmpClient Qmp { get; }

        public static async Task<PausedQemu> StartAsync(string dir, string name, string disk, params string[] extra)
        {
            string socket = Path.Combine(dir, name + ".qmp");
            var psi = new ProcessStartInfo("qemu-system-x86_64")
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (string a in (string[])[
                         "-name", name, "-M", "microvm", "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-m", "128",
                         "-qmp", $"unix:{socket},server=on,wait=off",
                         "-drive", $"file={disk},if=none,id=disk0,format=qcow2",
                         "-device", "virtio-blk-device,drive=disk0,id=blk0",
                         "-device", "virtio-serial-device",
                         .. extra])
                psi.ArgumentList.Add(a);
            var process = Process.Start(psi)!;
            try
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (true)
                {
                    if (process.HasExited)
                        throw new InvalidOperationException($"QEMU exited: {await process.StandardError.ReadToEndAsync()}");
                    if (DateTime.UtcNow > deadline) throw new TimeoutException("QEMU did not open its QMP socket.");
                    if (File.Exists(socket))
                    {
                        try
                        {
                            return new PausedQemu(process, await QmpClient.ConnectAsync(socket, NullLogger.Instance, CancellationToken.None));
                        }
                        catch (System.Net.Sockets.SocketException)
                        {
                            // The socket file exists a moment before QEMU listens on it (as in StartupWait).
                        }
                    }
                    await Task.Delay(20);
                }
            }
            catch
            {
                process.Kill();
                process.Dispose();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Qmp.DisposeAsync();
            if (!Process.HasExited) Process.Kill();
            await Process.WaitForExitAsync();
            Process.Dispose();
        }
    }
}
