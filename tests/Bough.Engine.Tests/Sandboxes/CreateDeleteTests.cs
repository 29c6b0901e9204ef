using Bough.Contracts;
using Bough.Engine.Tests.Fakes;

namespace Bough.Engine.Tests.Sandboxes;

/// <summary>The plain path through the real engine: create (cold boot), exec, identity, files, delete.</summary>
public sealed class CreateDeleteTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Create_runs_the_sandbox_and_configures_its_identity()
    {
        var sb = await _h.CreateAsync(env: new() { ["GREETING"] = "mine", ["EXTRA"] = "1" }, metadata: new() { ["owner"] = "t" });

        Assert.Equal("running", sb.State);
        Assert.Equal("tcg", sb.Accel);
        var row = await _h.RowAsync(sb.Id);
        Assert.NotNull(row);
        Assert.Equal(Bough.Catalog.SandboxState.Running, row.State);
        Assert.Equal(_h.VmOf(sb.Id).Pid, row.Pid);
        Assert.Equal("t", row.Metadata["owner"]);
        Assert.Equal([new PortMapping(8080, 48080)], sb.Ports);
        Assert.Same(_h.Runtime(sb.Id).Vm, _h.VmOf(sb.Id));
        Assert.Equal(0, _h.Images.Leased); // the image lease ends once the row names the image

        var (id, config) = Assert.Single(_h.Agents.Configs);
        Assert.Equal(sb.Id, id);
        Assert.Equal(sb.Id, config.Hostname);
        Assert.Equal(_h.Time.GetUtcNow().ToUnixTimeMilliseconds(), config.UnixTimeMs);
        Assert.Equal(64, config.Entropy?.Length);
        Assert.Equal("/srv", config.Cwd);
        // The image's Env under the sandbox's: the sandbox wins on GREETING.
        Assert.Equal(new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["GREETING"] = "mine", ["EXTRA"] = "1" },
            config.Env);
    }

    [Fact]
    public async Task Exec_returns_what_the_guest_answered()
    {
        var sb = await _h.CreateAsync();

        var echo = await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["echo", "hello", "world"]), CancellationToken.None);
        var other = await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None);

        Assert.Equal(0, echo.ExitCode);
        Assert.Equal("hello world\n", echo.Stdout);
        Assert.Equal("ok", other.Stdout);
        Assert.Equal(2, _h.Agents.LatestFor(sb.Id)!.Execs.Count);
    }

    [Fact]
    public async Task Files_round_trip_through_the_agent()
    {
        var sb = await _h.CreateAsync();
        using (var content = new MemoryStream("data"u8.ToArray()))
            await _h.Sandboxes.WriteFileAsync(sb.Id, "/tmp/a.txt", content, CancellationToken.None);

        await using (var file = await _h.Sandboxes.OpenFileAsync(sb.Id, "/tmp/a.txt", CancellationToken.None))
        {
            using var reader = new StreamReader(file.Content);
            Assert.Equal("data", await reader.ReadToEndAsync());
        }
        var listed = await _h.Sandboxes.ListFilesAsync(sb.Id, "/tmp", CancellationToken.None);
        Assert.Equal("a.txt", Assert.Single(listed).Name);
        await _h.Sandboxes.DeleteFileAsync(sb.Id, "/tmp/a.txt", CancellationToken.None);
        var missing = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.OpenFileAsync(sb.Id, "/tmp/a.txt", CancellationToken.None));
        Assert.Equal(ErrorCodes.FileNotFound, missing.Code);
    }

    [Fact]
    public async Task Delete_removes_row_runtime_directory_and_stops_the_vm()
    {
        var sb = await _h.CreateAsync();
        var rt = _h.Runtime(sb.Id);
        var dir = rt.Record.RuntimeDir;
        var agent = _h.Agents.LatestFor(sb.Id)!;
        Assert.True(Directory.Exists(dir));

        await _h.Sandboxes.DeleteAsync(sb.Id, CancellationToken.None);

        Assert.Null(await _h.RowAsync(sb.Id));
        Assert.Null(_h.Registry.Get(sb.Id));
        Assert.False(Directory.Exists(dir));
        Assert.False(_h.VmOf(sb.Id).IsAlive);
        Assert.True(agent.Disposed.IsCompleted);
        var gone = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.GetAsync(sb.Id, CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotFound, gone.Code);
        var exec = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["true"]), CancellationToken.None));
        Assert.Equal(ErrorCodes.SandboxNotFound, exec.Code);
    }

    [Fact]
    public async Task A_delete_during_a_create_waits_for_it_and_then_deletes_the_sandbox()
    {
        var boot = _h.Launcher.Boot.Hold(1);
        var create = _h.CreateAsync();
        await boot.Entered.Within();
        var id = Assert.Single(_h.Registry.Runtimes).Id;
        Assert.Equal("starting", (await _h.Sandboxes.GetAsync(id, CancellationToken.None)).State);

        var delete = _h.Sandboxes.DeleteAsync(id, CancellationToken.None);
        Assert.False(delete.IsCompleted);
        boot.Release();

        Assert.Equal("running", (await create.Within()).State);
        await delete.Within();
        Assert.Null(await _h.RowAsync(id));
        Assert.Null(_h.Registry.Get(id));
        Assert.Empty(_h.Launcher.Alive);
    }

    [Fact]
    public async Task A_boot_that_fails_leaves_no_trace()
    {
        _h.Launcher.Boot.Fail(1, () => new IOException("fake: qemu would not start"));

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.CreateAsync());

        Assert.Equal(ErrorCodes.CreateFailed, ex.Code);
        Assert.Contains("qemu would not start", ex.Message, StringComparison.Ordinal);
        Assert.Empty(await _h.RowsAsync());
        Assert.Empty(_h.Registry.Runtimes);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_h.Options.SandboxesDir));
        Assert.Equal(0, _h.Images.Leased);
    }

    [Fact]
    public async Task An_agent_that_never_answers_stops_the_vm_it_was_started_on()
    {
        _h.Agents.Connect.Fail(1, () => new Bough.AgentClient.AgentException("agent_unavailable", "fake: no handshake"));

        await Assert.ThrowsAsync<BoughException>(() => _h.CreateAsync());

        var vm = Assert.Single(_h.Launcher.Vms);
        Assert.False(vm.IsAlive);
        Assert.Empty(await _h.RowsAsync());
        Assert.Empty(_h.Registry.Runtimes);
    }
}
