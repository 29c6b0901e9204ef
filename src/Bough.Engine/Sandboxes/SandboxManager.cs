using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Bough.AgentClient;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Block;
using Bough.Engine.Images;
using Bough.Engine.Setup;
using Bough.Vmm;
using AgentExecEvent = Bough.AgentClient.ExecEvent;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Owns every sandbox of this daemon: creates them (catalog row, disk overlay, QEMU, agent),
/// routes exec and file operations to their agents, deletes them, and on start-up adopts
/// the VMs a previous daemon left running.
/// </summary>
/// <remarks>
/// Lock order: a sandbox's <c>Lifecycle</c> lock, then its <c>AgentGate</c>. No lock is held
/// across sandboxes; the sandbox table is a concurrent dictionary and SQLite serialises its
/// own writes. Exec and file operations take no lifecycle lock: they use the agent channel,
/// which multiplexes, and fail cleanly if a delete closes it under them.
/// </remarks>
public sealed partial class SandboxManager : ISandboxService
{
    private readonly EngineOptions _options;
    private readonly PreparedHost _host;
    private readonly SandboxStore _store;
    private readonly SnapshotStore _snapshots;
    private readonly TemplateStore _templates;
    private readonly ImageService _images;
    private readonly SemaphoreSlim _captureSlots;
    private readonly VmLauncher _launcher;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, SandboxRuntime> _sandboxes = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the daemon starts shutting down, so in-flight creates and execs end promptly.</summary>
    private readonly CancellationTokenSource _shutdown = new();

    public SandboxManager(EngineOptions options, PreparedHost host, SandboxStore store, SnapshotStore snapshots,
        TemplateStore templates, ImageService images, VmLauncher launcher, ILoggerFactory loggers)
    {
        _options = options;
        _snapshots = snapshots;
        _templates = templates;
        _images = images;
        _captureSlots = new SemaphoreSlim(options.MaxConcurrentCaptures, options.MaxConcurrentCaptures);
        _host = host;
        _store = store;
        _launcher = launcher;
        _loggers = loggers;
        _log = loggers.CreateLogger<SandboxManager>();
        Info = new EngineInfo(host.Accel.Accel, host.Accel.Reason, options.DataDir);
    }

    public EngineInfo Info { get; }

    // ---------------------------------------------------------------- lifecycle

    public async Task<Sandbox> CreateAsync(CreateSandboxRequest request, CancellationToken requestAborted)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, _shutdown.Token);
        var ct = linked.Token;
        var spec = RequestValidation.ValidateCreate(request, _options);
        // The lease keeps the image from being deleted until this sandbox's row names it.
        using var lease = await _images.AcquireAsync(spec.Image, ct);
        var image = lease.Image;

        var id = SandboxId.New();
        var dir = Path.Combine(_options.SandboxesDir, id);
        var now = DateTimeOffset.UtcNow;
        var record = new SandboxRecord
        {
            Id = id,
            State = SandboxStates.Starting,
            Image = image.Name,
            Vcpus = spec.Vcpus,
            MemoryMiB = spec.MemoryMiB,
            CreatedAt = now,
            UpdatedAt = now,
            Metadata = spec.Metadata,
            Env = spec.Env,
            Ports = spec.Ports.Select(p => new PortRecord(p, 0)).ToList(),
            Internet = spec.Internet,
            Accel = _host.Accel.Accel,
            RuntimeDir = dir,
            MemoryFile = Path.Combine(dir, "memory"),
            DiskPath = Path.Combine(dir, "disk.qcow2"),
        };
        var rt = new SandboxRuntime(record);
        await rt.Lifecycle.WaitAsync(ct);
        _sandboxes[id] = rt;
        // The row goes in before anything is started, so a daemon killed mid-create finds it
        // (state 'starting') and cleans up whatever the runtime dir holds.
        await _store.InsertAsync(record, CancellationToken.None);
        VmProcess? vm = null;
        try
        {
            Directory.CreateDirectory(dir);
            await DiskOverlay.CreateAsync(image.DiskPath, Path.Combine(dir, "disk.qcow2"), ct);
            vm = await _launcher.StartAsync(new VmSpec
            {
                Name = id,
                RuntimeDir = dir,
                KernelPath = _host.Kernel.KernelPath,
                InitrdPath = _host.Kernel.InitrdPath,
                KernelCmdline = _host.Kernel.CommandLine,
                DiskPath = Path.Combine(dir, "disk.qcow2"),
                Vcpus = spec.Vcpus,
                MemoryMiB = spec.MemoryMiB,
                Accel = _host.Accel.Accel,
                Internet = spec.Internet,
                Ports = spec.Ports.Select(p => new PortForward(p, 0)).ToList(),
            }, ct);
            rt.Vm = vm;
            record = record with
            {
                Pid = vm.Pid,
                Ports = vm.Ports.Select(p => new PortRecord(p.GuestPort, p.HostPort)).ToList(),
            };
            rt.Record = record;
            await _store.UpdateAsync(record, CancellationToken.None);

            var agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath,
                _loggers.CreateLogger("Bough.Agent." + id), _options.AgentTimeout, ct);
            rt.Agent = agent;
            await ConfigureGuestAsync(agent, id, image.Config, spec.Env, ct);

            record = record with { State = SandboxStates.Running };
            rt.Record = record;
            await _store.UpdateAsync(record, CancellationToken.None);
            WatchExit(rt, vm);
            WatchAgentPort(rt, vm);
            _log.LogInformation("sandbox {Id} running (pid {Pid}, {Accel})", id, vm.Pid, _host.Accel.Accel);
            return ToContract(record);
        }
        catch (Exception ex)
        {
            var tail = ConsoleTail(dir, 15);
            _log.LogWarning(ex, "sandbox {Id} failed to start", id);
            rt.Stopping = true;
            await DisposeRuntimeAsync(rt, vm);
            _sandboxes.TryRemove(id, out _);
            await _store.DeleteAsync(id, CancellationToken.None);
            TryDeleteDirectory(dir);
            if (ex is OperationCanceledException && requestAborted.IsCancellationRequested) throw;
            if (_shutdown.IsCancellationRequested)
                throw new BoughException(ErrorCodes.SandboxNotRunning, "the daemon is shutting down", ex);
            var reason = ex is AgentException or BoughException or QmpException or IOException or TimeoutException
                ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
            throw new BoughException(ErrorCodes.CreateFailed,
                $"the sandbox failed to start: {reason}" + (tail.Length > 0 ? $"\n--- console (last lines) ---\n{tail}" : ""), ex);
        }
        finally
        {
            rt.Lifecycle.Release();
        }
    }

    public async Task<IReadOnlyList<Sandbox>> ListAsync(CancellationToken ct)
    {
        var rows = await _store.ListAsync(ct);
        return rows.Select(r => ToContract(_sandboxes.TryGetValue(r.Id, out var rt) ? rt.Record : r)).ToList();
    }

    public async Task<Sandbox> GetAsync(string id, CancellationToken ct)
    {
        if (_sandboxes.TryGetValue(id, out var rt)) return ToContract(rt.Record);
        if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);
        var row = await _store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
        return ToContract(row);
    }

    public async Task DeleteAsync(string id, CancellationToken ct)
    {
        if (!_sandboxes.TryGetValue(id, out var rt))
        {
            // Rows without a live runtime (dead, stopped, failed): just the files and the row.
            if (!SandboxId.IsWellFormed(id)) throw BoughException.NotFound(id);
            var row = await _store.GetAsync(id, ct) ?? throw BoughException.NotFound(id);
            await KillLeftoversAsync(row.RuntimeDir);
            TryDeleteDirectory(row.RuntimeDir);
            await _store.DeleteAsync(id, CancellationToken.None);
            await CollectGarbageAsync(id);
            return;
        }

        await rt.Lifecycle.WaitAsync(ct);
        try
        {
            if (!_sandboxes.ContainsKey(id)) throw BoughException.NotFound(id); // lost a race with another delete
            rt.Stopping = true;
            rt.Record = rt.Record with { State = SandboxStates.Stopping };
            // Persist the intent first: a daemon killed half-way finishes the delete on restart.
            await _store.SetStateAsync(id, SandboxStates.Stopping, "deleting", CancellationToken.None);
            await DisposeRuntimeAsync(rt, rt.Vm);
            TryDeleteDirectory(rt.Record.RuntimeDir);
            await _store.DeleteAsync(id, CancellationToken.None);
            _sandboxes.TryRemove(id, out _);
            _log.LogInformation("sandbox {Id} deleted", id);
            await CollectGarbageAsync(id);
        }
        finally
        {
            rt.Lifecycle.Release();
        }
    }

    // ---------------------------------------------------------------- exec

    public async Task<ExecResult> ExecAsync(string id, ExecCommand command, CancellationToken ct)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        ExecOutput? exit = null;
        await foreach (var o in ExecStreamAsync(id, command, ct))
        {
            switch (o.Kind)
            {
                case ExecOutputKind.Stdout: Append(stdout, o.Data, "stdout"); break;
                case ExecOutputKind.Stderr: Append(stderr, o.Data, "stderr"); break;
                case ExecOutputKind.Exit: exit = o; break;
            }
        }
        if (exit is null) throw new BoughException(ErrorCodes.AgentUnavailable, "the guest agent ended the exec without an exit status");
        return new ExecResult(exit.ExitCode, Utf8(stdout), Utf8(stderr), exit.DurationMs, exit.Signal, exit.TimedOut);

        void Append(MemoryStream s, ReadOnlyMemory<byte> data, string name)
        {
            if (s.Length + data.Length > _options.MaxBufferedOutputBytes)
                throw new BoughException(ErrorCodes.PayloadTooLarge,
                    $"{name} exceeded {_options.MaxBufferedOutputBytes / (1024 * 1024)} MiB; use the streaming form " +
                    "(Accept: application/x-ndjson) for large output");
            s.Write(data.Span);
        }

        static string Utf8(MemoryStream s) => System.Text.Encoding.UTF8.GetString(s.GetBuffer(), 0, (int)s.Length);
    }

    public async IAsyncEnumerable<ExecOutput> ExecStreamAsync(string id, ExecCommand command,
        [EnumeratorCancellation] CancellationToken requestAborted)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, _shutdown.Token);
        var ct = linked.Token;
        if (command.Argv is null || command.Argv.Count == 0) command = command with { Argv = await DefaultCommandAsync(id, ct) };
        RequestValidation.ValidateExec(command);
        var agent = await GetAgentAsync(id, ct);
        var spec = new ExecSpec
        {
            Argv = command.Argv,
            User = command.User,
            Env = command.Env,
            Cwd = command.Cwd,
            StdinBytes = command.Stdin.IsEmpty ? null : command.Stdin,
            Timeout = command.Timeout,
        };
        var events = agent.ExecAsync(spec, ct).GetAsyncEnumerator(ct);
        try
        {
            while (true)
            {
                ExecOutput item;
                try
                {
                    if (!await events.MoveNextAsync()) yield break;
                    item = Map(events.Current);
                }
                catch (AgentException ex) { throw Translate(ex, id); }
                yield return item;
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    /// <summary>An exec without a command runs the image's Entrypoint + Cmd, as a container would.</summary>
    private async Task<IReadOnlyList<string>> DefaultCommandAsync(string id, CancellationToken ct)
    {
        var image = _sandboxes.TryGetValue(id, out var rt) ? rt.Record.Image : (await GetAsync(id, ct)).Image;
        var config = await _images.GetConfigAsync(image, ct);
        var argv = (config.Entrypoint ?? []).Concat(config.Cmd ?? []).ToList();
        if (argv.Count == 0)
            throw BoughException.Invalid($"cmd is empty and image '{image}' defines no Entrypoint or Cmd to run instead");
        return argv;
    }

    // ---------------------------------------------------------------- files

    public async Task WriteFileAsync(string id, string path, Stream content, CancellationToken ct)
    {
        RequestValidation.ValidateGuestPath(path);
        var agent = await GetAgentAsync(id, ct);
        try { await agent.WriteFileAsync(path, content, null, ct); }
        catch (AgentException ex) { throw Translate(ex, id); }
    }

    public async Task<GuestFile> OpenFileAsync(string id, string path, CancellationToken ct)
    {
        RequestValidation.ValidateGuestPath(path);
        var agent = await GetAgentAsync(id, ct);
        try
        {
            var reader = await agent.OpenReadAsync(path, ct);
            return new GuestFile(reader.Length, new AgentErrorTranslatingStream(reader.Content, reader, ex => Translate(ex, id)));
        }
        catch (AgentException ex) { throw Translate(ex, id); }
    }

    public async Task DeleteFileAsync(string id, string path, CancellationToken ct)
    {
        RequestValidation.ValidateGuestPath(path);
        if (path.TrimEnd('/').Length == 0)
            throw new BoughException(ErrorCodes.InvalidPath, "refusing to delete the guest's root directory");
        var agent = await GetAgentAsync(id, ct);
        try { await agent.RemoveAsync(path, recursive: true, ct); }
        catch (AgentException ex) { throw Translate(ex, id); }
    }

    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, CancellationToken ct)
    {
        RequestValidation.ValidateGuestPath(path);
        var agent = await GetAgentAsync(id, ct);
        try
        {
            var entries = await agent.ListAsync(path, ct);
            return entries.Select(e => new FileEntry(e.Name, e.Type.ToString().ToLowerInvariant(), e.Size, e.Mode, e.ModifiedAt)).ToList();
        }
        catch (AgentException ex) { throw Translate(ex, id); }
    }

    public async Task<Stream> OpenConsoleLogAsync(string id, CancellationToken ct)
    {
        var sb = await GetAsync(id, ct);
        var dir = _sandboxes.TryGetValue(id, out var rt) ? rt.Record.RuntimeDir : Path.Combine(_options.SandboxesDir, sb.Id);
        var path = Path.Combine(dir, "console.log");
        if (!File.Exists(path)) return new MemoryStream([], writable: false);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true);
    }

    // ---------------------------------------------------------------- start-up and shutdown

    /// <summary>
    /// Reconciles the catalog with reality after a (re)start: adopts VMs that are still alive,
    /// marks the rest dead with a reason, finishes interrupted creates and deletes, and kills
    /// any QEMU under our sandboxes directory that no row accounts for.
    /// </summary>
    public async Task RecoverAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(_options.SandboxesDir);
        var adoptedPids = new HashSet<int>();
        foreach (var row in await _store.ListAsync(ct))
        {
            switch (row.State)
            {
                case SandboxStates.Starting or SandboxStates.Stopping:
                    // An interrupted create (the caller never got a sandbox) or delete: remove
                    // every trace. (A resume keeps its row 'paused' until it runs, so it never
                    // lands here.)
                    await KillLeftoversAsync(row.RuntimeDir);
                    TryDeleteDirectory(row.RuntimeDir);
                    await _store.DeleteAsync(row.Id, ct);
                    _log.LogWarning("removed sandbox {Id}: its {Operation} was interrupted by a daemon restart", row.Id,
                        row.State == SandboxStates.Starting ? "creation" : "deletion");
                    break;
                case SandboxStates.Paused:
                    // Its state is in the pause snapshot; a VM still running here is a leftover
                    // of a pause interrupted after the snapshot was published.
                    await KillLeftoversAsync(row.RuntimeDir);
                    break;
                case SandboxStates.Running:
                    var vm = await VmProcess.TryAdoptAsync(row.RuntimeDir, _loggers, ct);
                    if (vm is null)
                    {
                        await _store.SetStateAsync(row.Id, SandboxStates.Dead,
                            $"its VM (pid {row.Pid?.ToString() ?? "?"}) was gone when the daemon restarted", ct);
                        _log.LogWarning("sandbox {Id} is dead: VM gone across daemon restart", row.Id);
                        break;
                    }
                    // A daemon killed inside a capture leaves the VM stopped and maybe on a
                    // newer overlay than the row says: resume it and re-read its disk.
                    var adopted = row with { Pid = vm.Pid, DiskPath = await ActiveDiskAsync(vm, ct) ?? row.DiskPath };
                    await EnsureRunningAsync(vm, row.Id, ct);
                    if (adopted != row) await _store.UpdateAsync(adopted, ct);
                    var rt = new SandboxRuntime(adopted) { Vm = vm };
                    _sandboxes[row.Id] = rt;
                    adoptedPids.Add(vm.Pid);
                    WatchExit(rt, vm);
                    WatchAgentPort(rt, vm);
                    _log.LogInformation("adopted sandbox {Id} (pid {Pid})", row.Id, vm.Pid);
                    break;
            }
        }

        CleanSnapshotDirectory(await _snapshots.ListAsync(ct));

        foreach (var pid in VmProcessScanner.FindQemuProcessesUnder(_options.SandboxesDir + "/"))
        {
            if (adoptedPids.Contains(pid)) continue;
            _log.LogWarning("killing orphaned QEMU process {Pid} that no sandbox accounts for", pid);
            KillPid(pid);
        }
    }

    /// <summary>Removes capture staging dirs and snapshot dirs that never got their catalog row.</summary>
    private void CleanSnapshotDirectory(IReadOnlyList<SnapshotRecord> published)
    {
        if (!Directory.Exists(_options.SnapshotsDir)) return;
        TryDeleteDirectory(Path.Combine(_options.SnapshotsDir, ".staging"));
        var known = published.Select(s => Path.GetFullPath(s.Dir)).ToHashSet();
        foreach (var dir in Directory.EnumerateDirectories(_options.SnapshotsDir))
        {
            if (known.Contains(Path.GetFullPath(dir))) continue;
            _log.LogWarning("removing {Dir}: a snapshot directory without a catalog row (interrupted publish)", dir);
            TryDeleteDirectory(dir);
        }
    }

    /// <summary>The file at the top of the VM's disk chain, from QMP.</summary>
    private async Task<string?> ActiveDiskAsync(VmProcess vm, CancellationToken ct)
    {
        try
        {
            var blocks = await vm.Qmp.ExecuteAsync("query-block", null, ct);
            foreach (var b in blocks.EnumerateArray())
                if (b.TryGetProperty("inserted", out var ins) && ins.TryGetProperty("file", out var file))
                    return file.GetString();
        }
        catch (Exception ex) when (ex is QmpException or IOException or InvalidOperationException)
        {
            _log.LogWarning(ex, "could not query the disk of {Dir}", vm.RuntimeDir);
        }
        return null;
    }

    /// <summary>Continues a VM left stopped (e.g. by a capture the daemon died in).</summary>
    private async Task EnsureRunningAsync(VmProcess vm, string id, CancellationToken ct)
    {
        try
        {
            var status = await vm.Qmp.ExecuteAsync("query-status", null, ct);
            if (status.TryGetProperty("running", out var running) && !running.GetBoolean())
            {
                _log.LogWarning("sandbox {Id} was left stopped (interrupted capture?); continuing it", id);
                await vm.Qmp.ExecuteAsync("cont", null, ct);
            }
        }
        catch (Exception ex) when (ex is QmpException or IOException or InvalidOperationException)
        {
            _log.LogWarning(ex, "could not check the run state of sandbox {Id}", id);
        }
    }

    /// <summary>First step of a shutdown, before the HTTP server drains: ends in-flight creates and execs.</summary>
    public void BeginShutdown() => _shutdown.Cancel();

    /// <summary>
    /// Stops every VM (graceful shutdown) or just lets go of them (to be adopted later).
    /// Deliberately ignores cancellation: leaving VMs half-stopped is worse than a slow exit.
    /// </summary>
    public async Task ShutdownAsync()
    {
        _shutdown.Cancel();
        var all = _sandboxes.Values.ToList();
        await Parallel.ForEachAsync(all, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (rt, _) =>
        {
            await rt.Lifecycle.WaitAsync(CancellationToken.None);
            try
            {
                rt.Stopping = true;
                if (_options.StopSandboxesOnShutdown)
                {
                    await DisposeRuntimeAsync(rt, rt.Vm);
                    if (rt.Record.State == SandboxStates.Running)
                        await _store.SetStateAsync(rt.Id, SandboxStates.Stopped, "the daemon shut down", CancellationToken.None);
                }
                else
                {
                    if (rt.Agent is { } a) await a.DisposeAsync();
                    if (rt.Vm is { } vm) await vm.DisposeAsync(); // detaches; QEMU keeps running
                }
            }
            catch (Exception ex) { _log.LogWarning(ex, "error stopping sandbox {Id}", rt.Id); }
            finally { rt.Lifecycle.Release(); }
        });
        _sandboxes.Clear();
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>
    /// Makes the guest this sandbox: hostname, clock, fresh entropy, and the exec defaults (the
    /// image's Env first, the request's env winning; the image's WorkingDir and User).
    /// </summary>
    private async Task ConfigureGuestAsync(AgentConnection agent, string id, ImageConfig image,
        IReadOnlyDictionary<string, string> env, CancellationToken ct)
    {
        var merged = ImageConfigs.EnvMap(image);
        foreach (var (k, v) in env) merged[k] = v;
        await agent.ConfigureAsync(new GuestConfig
        {
            Hostname = id,
            UnixTimeMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            Entropy = RandomNumberGenerator.GetBytes(64),
            Env = merged.Count > 0 ? merged : null,
            Cwd = image.WorkingDir,
            User = image.User,
        }, ct);
    }

    /// <summary>The sandbox's agent, reconnecting if the channel dropped while the VM lives on.</summary>
    private async Task<AgentConnection> GetAgentAsync(string id, CancellationToken ct)
    {
        if (!_sandboxes.TryGetValue(id, out var rt))
        {
            var sb = await GetAsync(id, ct); // 404 for unknown ids
            throw new BoughException(ErrorCodes.SandboxNotRunning,
                $"sandbox {id} is {sb.State}" + (sb.StateReason is null ? "" : $" ({sb.StateReason})") + "; only running sandboxes accept this");
        }
        if (rt.Record.State != SandboxStates.Running || rt.Stopping)
            throw new BoughException(ErrorCodes.SandboxNotRunning, $"sandbox {id} is {rt.Record.State}");
        if (rt.Agent is { IsConnected: true } live) return live;

        await rt.AgentGate.WaitAsync(ct);
        try
        {
            if (rt.Agent is { IsConnected: true } again) return again;
            if (rt.Vm is not { IsAlive: true } vm)
                throw new BoughException(ErrorCodes.SandboxNotRunning, $"sandbox {id}'s VM is not running");
            if (rt.Agent is { } old) await old.DisposeAsync();
            rt.Agent = null;
            try
            {
                rt.Agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath,
                    _loggers.CreateLogger("Bough.Agent." + id), TimeSpan.FromSeconds(15), ct);
                _log.LogInformation("reconnected to the agent of sandbox {Id}", id);
                return rt.Agent;
            }
            catch (AgentException ex)
            {
                throw new BoughException(ErrorCodes.AgentUnavailable, $"the agent of sandbox {id} is not answering: {ex.Message}", ex);
            }
        }
        finally
        {
            rt.AgentGate.Release();
        }
    }

    /// <summary>
    /// When the guest closes the agent port (the agent crashed or was killed), QEMU reports
    /// VSERPORT_CHANGE. The socket to QEMU stays open, so without this the host would wait
    /// forever on operations the dead agent will never answer: drop the channel, which fails
    /// them with agent_unavailable; the next call reconnects to the respawned agent.
    /// </summary>
    private void WatchAgentPort(SandboxRuntime rt, VmProcess vm)
    {
        var subscription = vm.Qmp.SubscribeEvents();
        _ = Task.Run(async () =>
        {
            using var _ = subscription;
            try
            {
                await foreach (var ev in subscription.Reader.ReadAllAsync())
                {
                    if (ev.Name != "VSERPORT_CHANGE" || ev.Data is not { } data) continue;
                    if (!data.TryGetProperty("id", out var idProp) || idProp.GetString() != QemuCommandLine.AgentPortDeviceId) continue;
                    if (!data.TryGetProperty("open", out var open) || open.ValueKind != System.Text.Json.JsonValueKind.False) continue;
                    if (rt.Agent is { } agent)
                    {
                        _log.LogWarning("sandbox {Id}: the guest closed the agent port; dropping the agent channel", rt.Id);
                        await agent.DisposeAsync();
                    }
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _log.LogDebug(ex, "agent port watcher of {Id} ended", rt.Id);
            }
        });
    }

    private void WatchExit(SandboxRuntime rt, VmProcess vm)
    {
        _ = vm.Exited.ContinueWith(async _ =>
        {
            if (rt.Stopping) return;
            var reason = "the VM process exited unexpectedly";
            var tail = ConsoleTail(rt.Record.RuntimeDir, 3);
            if (tail.Length > 0) reason += "; console: " + tail.ReplaceLineEndings(" | ");
            _log.LogWarning("sandbox {Id}: {Reason}", rt.Id, reason);
            rt.Record = rt.Record with { State = SandboxStates.Dead, StateReason = reason };
            try { await _store.SetStateAsync(rt.Id, SandboxStates.Dead, reason, CancellationToken.None); }
            catch (Exception ex) { _log.LogWarning(ex, "could not record the death of sandbox {Id}", rt.Id); }
            _sandboxes.TryRemove(new KeyValuePair<string, SandboxRuntime>(rt.Id, rt));
            if (rt.Agent is { } a) await a.DisposeAsync();
        }, TaskScheduler.Default);
    }

    private async Task DisposeRuntimeAsync(SandboxRuntime rt, VmProcess? vm)
    {
        if (rt.Agent is { } agent)
        {
            try { await agent.DisposeAsync(); } catch (Exception ex) { _log.LogDebug(ex, "agent dispose"); }
            rt.Agent = null;
        }
        if (vm is not null)
        {
            try { await vm.StopAsync(_options.StopGrace, CancellationToken.None); }
            catch (Exception ex) { _log.LogWarning(ex, "stopping the VM of {Id} failed", rt.Id); }
            await vm.DisposeAsync();
        }
        else
        {
            await KillLeftoversAsync(rt.Record.RuntimeDir);
        }
    }

    /// <summary>Kills any QEMU whose command line points into this runtime directory.</summary>
    private async Task KillLeftoversAsync(string runtimeDir)
    {
        foreach (var pid in VmProcessScanner.FindQemuProcessesUnder(runtimeDir.TrimEnd('/') + "/"))
        {
            _log.LogInformation("killing leftover QEMU {Pid} of {Dir}", pid, runtimeDir);
            KillPid(pid);
        }
        for (var i = 0; i < 50 && VmProcessScanner.FindQemuProcessesUnder(runtimeDir.TrimEnd('/') + "/").Count > 0; i++)
            await Task.Delay(20);
    }

    private static void KillPid(int pid)
    {
        try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
    }

    private void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) { _log.LogWarning(ex, "could not remove {Dir}", dir); }
    }

    internal static string ConsoleTail(string dir, int lines)
    {
        try
        {
            var path = Path.Combine(dir, "console.log");
            if (!File.Exists(path)) return "";
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var start = Math.Max(0, fs.Length - 8192);
            fs.Seek(start, SeekOrigin.Begin);
            var text = new StreamReader(fs).ReadToEnd();
            var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException) { return ""; }
    }

    private static ExecOutput Map(AgentExecEvent e) => e switch
    {
        AgentExecEvent.Stdout o => new ExecOutput(ExecOutputKind.Stdout, o.Data),
        AgentExecEvent.Stderr o => new ExecOutput(ExecOutputKind.Stderr, o.Data),
        AgentExecEvent.Exit x => new ExecOutput(ExecOutputKind.Exit, default, x.ExitCode, x.Signal, x.TimedOut, x.DurationMs),
        _ => throw new AgentException("agent_unavailable", "unknown exec event"),
    };

    internal static BoughException Translate(AgentException ex, string id) => ex.Code switch
    {
        "file_not_found" => new(ErrorCodes.FileNotFound, ex.Message, ex),
        "not_a_directory" => new(ErrorCodes.NotADirectory, ex.Message, ex),
        "is_a_directory" => new(ErrorCodes.IsADirectory, ex.Message, ex),
        "invalid_path" => new(ErrorCodes.InvalidPath, ex.Message, ex),
        "bad_request" or "unsupported" => new(ErrorCodes.InvalidRequest, ex.Message, ex),
        "permission_denied" => new(ErrorCodes.PermissionDenied, ex.Message, ex),
        "already_exists" => new(ErrorCodes.Conflict, ex.Message, ex),
        "agent_unavailable" => new(ErrorCodes.AgentUnavailable, $"the agent of sandbox {id} is unavailable: {ex.Message}", ex),
        _ => new(ErrorCodes.GuestError, $"the guest reported {ex.Code}: {ex.Message}", ex),
    };

    private static Sandbox ToContract(SandboxRecord r) => new(
        r.Id, r.State, r.Image, r.Vcpus, r.MemoryMiB, r.CreatedAt,
        r.Metadata, r.Ports.Select(p => new PortMapping(p.GuestPort, p.HostPort)).ToList(),
        r.Internet, r.Accel, r.StateReason, r.Pid, r.SnapshotId, r.Template);
}
