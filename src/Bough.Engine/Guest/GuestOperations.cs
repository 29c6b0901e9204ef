using System.Runtime.CompilerServices;
using Bough.AgentClient;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Lifecycle;
using Bough.Engine.Sandboxes;
using AgentExecEvent = Bough.AgentClient.ExecEvent;

namespace Bough.Engine.Guest;

/// <summary>
/// Exec and file operations routed to a sandbox's agent. They take no lifecycle lease: the
/// channel multiplexes, and a delete or pause closes it under them, which fails them cleanly.
/// </summary>
internal sealed class GuestOperations(EngineOptions options, GuestChannel channel, SandboxRegistry registry, IBootImages images,
    ExecSlots execSlots)
{
    /// <summary>
    /// Runs a command and collects its output, within the buffered-exec limits: a slot
    /// (<see cref="ExecSlots"/>), a default timeout, and caps on the output's bytes and on the JSON
    /// it becomes. Past a cap the command is ended (its process group killed) and the answer is 413.
    /// </summary>
    public async Task<ExecResult> ExecAsync(string id, ExecCommand command, CancellationToken ct)
    {
        using var slot = await execSlots.AcquireAsync(id, ct);
        command = command with { Timeout = command.Timeout ?? options.DefaultExecTimeout };
        var stdout = new BufferedOutput();
        var stderr = new BufferedOutput();
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
        return new ExecResult(exit.ExitCode, stdout.Finish(), stderr.Finish(), exit.DurationMs, exit.Signal, exit.TimedOut);

        void Append(BufferedOutput s, ReadOnlyMemory<byte> data, string name)
        {
            if (s.Bytes + data.Length > options.MaxBufferedOutputBytes)
                throw new BoughException(ErrorCodes.PayloadTooLarge,
                    $"{name} exceeded {Size(options.MaxBufferedOutputBytes)}; use the streaming form " +
                    "(Accept: application/x-ndjson) for large output");
            s.Append(data.Span);
            if (stdout.JsonChars + stderr.JsonChars > options.MaxBufferedJsonBytes)
                throw new BoughException(ErrorCodes.PayloadTooLarge,
                    $"the output would make a JSON answer of more than {Size(options.MaxBufferedJsonBytes)} (control characters, " +
                    "non-ASCII and binary bytes are escaped); use the streaming form (Accept: application/x-ndjson)");
        }

        static string Size(long bytes) => bytes >= 1024 * 1024 ? $"{bytes / (1024 * 1024)} MiB" : $"{bytes / 1024} KiB";
    }

    public async IAsyncEnumerable<ExecOutput> ExecStreamAsync(string id, ExecCommand command, [EnumeratorCancellation] CancellationToken ct)
    {
        var useDefault = command.Argv is null || command.Argv.Count == 0;
        if (!useDefault) RequestValidation.ValidateExec(command);
        var agent = await channel.GetAgentAsync(id, ct);
        if (useDefault)
        {
            command = command with { Argv = await DefaultCommandAsync(id, ct) };
            RequestValidation.ValidateExec(command);
        }
        var spec = new ExecSpec
        {
            Argv = command.Argv!,
            User = command.User,
            Env = command.Env,
            Cwd = command.Cwd is null ? null : GuestPaths.Normalize(command.Cwd),
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
                catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
                yield return item;
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    public async Task WriteFileAsync(string id, string path, Stream content, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await channel.GetAgentAsync(id, ct);
        try { await agent.WriteFileAsync(path, content, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<GuestFile> OpenFileAsync(string id, string path, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await channel.GetAgentAsync(id, ct);
        try
        {
            var reader = await agent.OpenReadAsync(path, ct);
            return new GuestFile(reader.Length, new AgentErrorTranslatingStream(reader.Content, reader.Owner, ex => ErrorMap.FromAgent(ex, id)));
        }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task DeleteFileAsync(string id, string path, CancellationToken ct)
    {
        var normal = RequestValidation.NormalizeGuestPath(path);
        if (normal == GuestPaths.Root)
            throw new BoughException(ErrorCodes.InvalidPath, $"refusing to delete the guest's root directory ('{path}' is /)");
        path = normal;
        var agent = await channel.GetAgentAsync(id, ct);
        try { await agent.RemoveAsync(path, recursive: true, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    /// <summary>Lists a directory; one over <see cref="EngineOptions.MaxListEntries"/> or <see cref="EngineOptions.MaxListBytes"/> is 413.</summary>
    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await channel.GetAgentAsync(id, ct);
        try
        {
            var entries = await agent.ListAsync(path, new ListLimits(options.MaxListEntries, options.MaxListBytes), ct);
            return entries.Select(e => new FileEntry(e.Name, e.Type.ToString().ToLowerInvariant(), e.Size, e.Mode, e.ModifiedAt)).ToList();
        }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    /// <summary>An exec without a command runs the image's Entrypoint + Cmd, as a container would.</summary>
    private async Task<IReadOnlyList<string>> DefaultCommandAsync(string id, CancellationToken ct)
    {
        var image = registry.Get(id)?.Record.Image ?? throw BoughException.NotRunning($"sandbox {id} is not running");
        var config = await images.GetConfigAsync(image, ct);
        var argv = (config.Entrypoint ?? []).Concat(config.Cmd ?? []).ToList();
        if (argv.Count == 0)
            throw BoughException.Invalid($"cmd is empty and image '{image}' defines no Entrypoint or Cmd to run instead");
        return argv;
    }

    private static ExecOutput Map(AgentExecEvent e) => e switch
    {
        AgentExecEvent.Stdout o => new ExecOutput(ExecOutputKind.Stdout, o.Data),
        AgentExecEvent.Stderr o => new ExecOutput(ExecOutputKind.Stderr, o.Data),
        AgentExecEvent.Exit x => new ExecOutput(ExecOutputKind.Exit, default, x.ExitCode, x.Signal, x.TimedOut, x.DurationMs),
        _ => throw new AgentException("agent_unavailable", "unknown exec event"),
    };
}
