using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>Each test runs its own daemon because it kills or stops it.</summary>
[Collection("daemon")]
public sealed class RestartTests
{
    [Fact]
    public async Task A_restarted_daemon_adopts_a_live_sandbox_after_a_crash()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var sb = await first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        await first.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["sh", "-c", "echo kept > /root/state; setsid sh -c 'while true; do sleep 1; done' >/dev/null 2>&1 &"] });
        await first.KillHardAsync();
        Assert.True(HostProcess.IsAlive(sb.Pid!.Value), "the VM should survive a daemon crash");

        await using var second = await DaemonProcess.StartAsync(dataDir);
        var again = await second.Client.GetSandboxAsync(sb.Id);
        Assert.Equal(SandboxStates.Running, again.State);
        Assert.Equal(sb.Pid, again.Pid);
        var r = await second.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["cat", "/root/state"] });
        Assert.Equal("kept\n", r.Stdout);

        await second.Client.DeleteSandboxAsync(sb.Id);
        Assert.False(HostProcess.IsAlive(sb.Pid!.Value));
    }

    [Fact]
    public async Task A_dead_vm_is_marked_dead_with_a_reason_after_restart()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var sb = await first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        await first.KillHardAsync();
        Libc.Kill(sb.Pid!.Value, Libc.SIGKILL);
        await Task.Delay(500);

        await using var second = await DaemonProcess.StartAsync(dataDir);
        var again = await second.Client.GetSandboxAsync(sb.Id);
        Assert.Equal(SandboxStates.Dead, again.State);
        Assert.False(string.IsNullOrEmpty(again.StateReason));
        var ex = await Assert.ThrowsAsync<BoughApiException>(() =>
            second.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["true"] }));
        Assert.Equal(409, ex.Status);
        await second.Client.DeleteSandboxAsync(sb.Id);
        Assert.Empty(await second.Client.ListSandboxesAsync());
    }

    [Fact]
    public async Task A_crash_during_create_leaves_no_sandbox_and_no_qemu()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var create = first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        // Wait until QEMU exists (the create is under way), then crash the daemon.
        await Poll.UntilAsync(() => TestEnvironment.QemuProcessesUnder(dataDir).Count > 0, TimeSpan.FromSeconds(10));
        await first.KillHardAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => create);

        await using var second = await DaemonProcess.StartAsync(dataDir);
        Assert.Empty(await second.Client.ListSandboxesAsync());
        Assert.Empty(TestEnvironment.QemuProcessesUnder(dataDir));
        Assert.Empty(Directory.GetDirectories(Path.Combine(dataDir, "sandboxes")));
    }

    [Fact]
    public async Task Graceful_shutdown_stops_every_vm()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var d = await DaemonProcess.StartAsync(dataDir);
        var sb = await d.Client.CreateSandboxAsync(new CreateSandboxRequest());
        await d.StopAsync();
        Assert.Empty(TestEnvironment.QemuProcessesUnder(dataDir));

        await using var again = await DaemonProcess.StartAsync(dataDir);
        var row = await again.Client.GetSandboxAsync(sb.Id);
        Assert.Equal(SandboxStates.Stopped, row.State);
    }

    [Fact]
    public async Task Shutdown_with_a_request_in_flight_still_stops_every_vm()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var d = await DaemonProcess.StartAsync(dataDir);
        var sb = await d.Client.CreateSandboxAsync(new CreateSandboxRequest());
        var longExec = d.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["sleep", "600"] });
        await Task.Delay(1000);
        await d.StopAsync();
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => longExec);
        // The request ends with a problem that says why (or a closed connection), never an internal error.
        if (ex is Bough.Client.BoughApiException api)
            Assert.NotEqual(Bough.Contracts.ErrorCodes.Internal, api.Code);
        Assert.DoesNotContain("Unhandled exception", d.Output, StringComparison.Ordinal);
        Assert.Empty(TestEnvironment.QemuProcessesUnder(dataDir));
    }

    [Fact]
    public async Task A_crash_in_the_middle_of_a_capture_leaves_no_half_snapshot_and_no_orphan()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var sb = await first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        await first.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["sh", "-c", "head -c 40000000 /dev/urandom > /dev/shm/noise; echo kept > /root/kept"] });
        var branch = first.Client.BranchAsync(sb.Id, new BranchRequest { Count = 3 });
        // Kill as soon as the capture has started writing its staging directory.
        var staging = Path.Combine(dataDir, "snapshots", ".staging");
        await Poll.UntilAsync(() => Directory.Exists(staging) && Directory.EnumerateFileSystemEntries(staging).Any(),
            TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(10));
        await first.KillHardAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => branch);

        await using var second = await DaemonProcess.StartAsync(dataDir);
        // Every listed snapshot is complete; nothing half-written is left on disk.
        foreach (var snap in await second.Client.ListSnapshotsAsync())
            Assert.True(File.Exists(Path.Combine(dataDir, "snapshots", snap.Id, "snapshot.json")), $"{snap.Id} is incomplete");
        Assert.False(Directory.Exists(staging) && Directory.EnumerateFileSystemEntries(staging).Any(), "staging leftovers");
        // The source is running (continued if the crash left it stopped) and intact.
        var source = await second.Client.GetSandboxAsync(sb.Id);
        Assert.Equal(SandboxStates.Running, source.State);
        Assert.Equal("kept\n", (await second.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["cat", "/root/kept"] })).Stdout);
        // Every QEMU under the data dir belongs to a listed sandbox.
        var listed = (await second.Client.ListSandboxesAsync()).Where(s => s.Pid is not null).Select(s => s.Pid!.Value).ToHashSet();
        Assert.All(TestEnvironment.QemuProcessesUnder(dataDir), pid => Assert.Contains(pid, listed));
        foreach (var s in await second.Client.ListSandboxesAsync())
            await second.Client.DeleteSandboxAsync(s.Id);
        Assert.Empty(TestEnvironment.QemuProcessesUnder(dataDir));
    }

    [Fact]
    public async Task A_paused_sandbox_survives_a_daemon_restart_and_resumes()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        var sb = await first.Client.CreateSandboxAsync(new CreateSandboxRequest());
        await first.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["sh", "-c", "echo before-pause > /root/p"] });
        await first.Client.PauseAsync(sb.Id);
        await first.StopAsync();

        await using var second = await DaemonProcess.StartAsync(dataDir);
        Assert.Equal(SandboxStates.Paused, (await second.Client.GetSandboxAsync(sb.Id)).State);
        var resumed = await second.Client.ResumeAsync(sb.Id);
        Assert.Equal(SandboxStates.Running, resumed.State);
        Assert.Equal("before-pause\n", (await second.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["cat", "/root/p"] })).Stdout);
        await second.Client.DeleteSandboxAsync(sb.Id);
    }

    [Fact]
    public async Task A_template_create_interrupted_by_a_crash_leaves_no_builder_vm_behind()
    {
        var dataDir = TestEnvironment.NewDataDir();
        var first = await DaemonProcess.StartAsync(dataDir);
        // A ready check that never passes keeps the create in its polling phase until the crash.
        var create = first.Client.CreateTemplateAsync(new CreateTemplateRequest
        {
            Name = "crashy", Image = "base", Ready = ["false"], ReadyTimeoutSeconds = 600,
        });
        Sandbox? builder = null;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (builder is null)
        {
            Assert.False(create.IsCompleted, "the template create ended before the crash");
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), "no builder sandbox appeared");
            builder = (await first.Client.ListSandboxesAsync())
                .FirstOrDefault(s => s.Metadata.ContainsKey("bough.template-builder") && s.State == SandboxStates.Running);
            await Task.Delay(200);
        }
        await first.KillHardAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => create);
        Assert.True(HostProcess.IsAlive(builder.Pid!.Value), "the builder VM should survive the crash (to be cleaned up)");

        await using var second = await DaemonProcess.StartAsync(dataDir);
        Assert.DoesNotContain(await second.Client.ListSandboxesAsync(), s => s.Id == builder.Id);
        Assert.Empty(await second.Client.ListTemplatesAsync());
        Assert.False(HostProcess.IsAlive(builder.Pid!.Value), "the builder VM is still running after the restart");
        // The name is free again.
        Assert.Equal("crashy", (await second.Client.CreateTemplateAsync(new CreateTemplateRequest { Name = "crashy", Image = "base" })).Name);
        await second.Client.DeleteTemplateAsync("crashy");
    }
}
