using System.Runtime.CompilerServices;
using Bough.AgentClient;
using Bough.Contracts;
using AgentFeatures = Bough.Protocol.AgentFeatures;
using Bough.Engine.Sandboxes;

namespace Bough.Engine.Guest;

/// <summary>
/// <see cref="IGuestProcesses"/> over the sandbox's agent channel: validate, check that the
/// guest's agent has the feature, call it, translate its errors (<see cref="ErrorMap.FromAgent"/>).
/// Like <see cref="GuestOperations"/> it takes no lifecycle lease.
/// </summary>
internal sealed class GuestProcesses(EngineOptions options, GuestChannel channel) : IGuestProcesses
{
    public async Task<GuestProcess> StartAsync(string id, ProcessStart start, CancellationToken ct)
    {
        start = ProcessValidation.Validate(start);
        var agent = await AgentAsync(id, start.Pty is null ? AgentFeatures.Processes : AgentFeatures.Pty, ct);
        try
        {
            var pid = await agent.StartProcessAsync(ProcessMapping.ToSpec(start), ct);
            // The listing has what the guest resolved (cwd, user); a process that already exited is among the remembered ones.
            var listed = await agent.ListProcessesAsync(includeExited: true, ct);
            return listed.LastOrDefault(p => p.Pid == pid) is { } info
                ? ProcessMapping.ToContract(info)
                : new GuestProcess { Pid = pid, Tag = start.Tag, Cmd = start.Argv, Env = start.Env, Cwd = start.Cwd, User = start.User, Pty = start.Pty, StartedAt = DateTimeOffset.UtcNow, Running = true };
        }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async IAsyncEnumerable<ProcessStreamItem> StartAttachedAsync(string id, ProcessStart start, ProcessAttach attach,
        [EnumeratorCancellation] CancellationToken ct)
    {
        start = ProcessValidation.Validate(start);
        attach = ProcessValidation.Validate(attach);
        var agent = await AgentAsync(id, start.Pty is null ? AgentFeatures.Processes : AgentFeatures.Pty, ct);
        var events = agent.StartProcessAttachedAsync(ProcessMapping.ToSpec(start), ProcessMapping.ToOptions(attach), ct);
        await foreach (var e in Translate(events, ProcessMapping.ToItem, id, ct))
            yield return e;
    }

    public async IAsyncEnumerable<ProcessStreamItem> AttachAsync(string id, ProcessRef process, ProcessAttach attach,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var selector = ProcessMapping.ToSelector(ProcessValidation.Validate(process));
        attach = ProcessValidation.Validate(attach);
        var agent = await AgentAsync(id, AgentFeatures.Processes, ct);
        await foreach (var e in Translate(agent.AttachProcessAsync(selector, ProcessMapping.ToOptions(attach), ct), ProcessMapping.ToItem, id, ct))
            yield return e;
    }

    public async Task<IReadOnlyList<GuestProcess>> ListAsync(string id, bool includeExited, CancellationToken ct)
    {
        var agent = await AgentAsync(id, AgentFeatures.Processes, ct);
        try { return (await agent.ListProcessesAsync(includeExited, ct)).Select(ProcessMapping.ToContract).ToList(); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<GuestProcess> GetAsync(string id, ProcessRef process, CancellationToken ct)
    {
        ProcessValidation.Validate(process);
        var all = await ListAsync(id, includeExited: true, ct);
        // A tag may name one running process and several exited ones: the running one (listed last of its tag) wins.
        return all.Where(p => process.Pid is { } pid ? p.Pid == pid : p.Tag == process.Tag)
                   .OrderBy(p => p.Running).LastOrDefault()
               ?? throw NotFound(id, process);
    }

    public async Task SendInputAsync(string id, ProcessRef process, Stream input, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(input);
        var selector = ProcessMapping.ToSelector(ProcessValidation.Validate(process));
        var agent = await AgentAsync(id, AgentFeatures.Processes, ct);
        try { await agent.SendProcessInputAsync(selector, input, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task CloseStdinAsync(string id, ProcessRef process, CancellationToken ct)
    {
        var selector = ProcessMapping.ToSelector(ProcessValidation.Validate(process));
        var agent = await AgentAsync(id, AgentFeatures.Processes, ct);
        try { await agent.CloseProcessStdinAsync(selector, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task SignalAsync(string id, ProcessRef process, int signal, CancellationToken ct)
    {
        var selector = ProcessMapping.ToSelector(ProcessValidation.Validate(process));
        Signals.Validate(signal);
        var agent = await AgentAsync(id, AgentFeatures.Processes, ct);
        bool delivered;
        try { delivered = await agent.SignalProcessAsync(selector, signal, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
        if (!delivered) throw NotFound(id, process);
    }

    public async Task ResizeAsync(string id, ProcessRef process, TerminalSize size, CancellationToken ct)
    {
        var selector = ProcessMapping.ToSelector(ProcessValidation.Validate(process));
        ProcessValidation.Validate(size);
        var agent = await AgentAsync(id, AgentFeatures.Pty, ct);
        try { await agent.ResizeProcessAsync(selector, new PtySize(size.Cols, size.Rows), ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<FileEntry> StatAsync(string id, string path, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await AgentAsync(id, null, ct);
        try { return ProcessMapping.ToContract(await agent.StatAsync(path, ct)); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<bool> ExistsAsync(string id, string path, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await AgentAsync(id, null, ct);
        try { return await agent.ExistsAsync(path, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<bool> MkdirAsync(string id, string path, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        var agent = await AgentAsync(id, null, ct);
        try { return await agent.MkdirAsync(path, ct); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async Task<FileEntry> MoveAsync(string id, string source, string destination, CancellationToken ct)
    {
        source = RequestValidation.NormalizeGuestPath(source, "source");
        destination = RequestValidation.NormalizeGuestPath(destination, "destination");
        if (source == GuestPaths.Root || destination == GuestPaths.Root)
            throw new BoughException(ErrorCodes.InvalidPath, "the guest's root directory cannot be moved or replaced");
        var agent = await AgentAsync(id, AgentFeatures.Files2, ct);
        try { return ProcessMapping.ToContract(await agent.MoveAsync(source, destination, ct)); }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    public async IAsyncEnumerable<FileChange> WatchAsync(string id, string path, bool recursive, TimeSpan? keepalive,
        [EnumeratorCancellation] CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        ProcessValidation.ValidateKeepalive(keepalive);
        var agent = await AgentAsync(id, AgentFeatures.Watch, ct);
        var events = agent.WatchAsync(path, new WatchOptions { Recursive = recursive, KeepaliveInterval = keepalive }, ct);
        await foreach (var e in Translate(events, ProcessMapping.ToChange, id, ct))
            yield return e;
    }

    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, int depth, CancellationToken ct)
    {
        path = RequestValidation.NormalizeGuestPath(path);
        ProcessValidation.ValidateDepth(depth);
        var agent = await AgentAsync(id, depth > 1 ? AgentFeatures.Files2 : null, ct);
        try
        {
            var entries = await agent.ListAsync(path, depth, new ListLimits(options.MaxListEntries, options.MaxListBytes), ct);
            return entries.Select(ProcessMapping.ToContract).ToList();
        }
        catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
    }

    /// <summary>The sandbox's agent, refusing one whose handshake did not announce <paramref name="feature"/>.</summary>
    private async Task<IGuestProcessAgent> AgentAsync(string id, string? feature, CancellationToken ct)
    {
        var agent = await channel.GetAgentAsync(id, ct);
        if (agent is IGuestProcessAgent p && (feature is null || p.Features.Contains(feature)))
            return p;
        throw new BoughException(ErrorCodes.GuestUnsupported,
            $"the guest agent of sandbox {id} does not support '{feature ?? "files"}' (the sandbox comes from an image or snapshot made " +
            "before this feature); create the sandbox from a current image");
    }

    private static BoughException NotFound(string id, ProcessRef process) =>
        new(ErrorCodes.ProcessNotFound, $"sandbox {id} has no {process} (it may have exited and been forgotten)");

    /// <summary>Maps an agent stream item by item, turning its failures into API errors.</summary>
    private static async IAsyncEnumerable<TOut> Translate<TIn, TOut>(IAsyncEnumerable<TIn> source, Func<TIn, TOut> map, string id,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var e = source.GetAsyncEnumerator(ct);
        try
        {
            while (true)
            {
                TOut item;
                try
                {
                    if (!await e.MoveNextAsync()) yield break;
                    item = map(e.Current);
                }
                catch (AgentException ex) { throw ErrorMap.FromAgent(ex, id); }
                yield return item;
            }
        }
        finally
        {
            await e.DisposeAsync();
        }
    }
}
