using Bough.AgentClient;
using Bough.Contracts;

namespace Bough.Engine.Guest;

/// <summary>Translations between the engine's process and file types and the agent client's.</summary>
internal static class ProcessMapping
{
    public static ProcessSpec ToSpec(ProcessStart s) => new()
    {
        Argv = s.Argv,
        Env = s.Env,
        Cwd = s.Cwd,
        User = s.User,
        Tag = s.Tag,
        Stdin = s.Stdin,
        Pty = s.Pty is { } size ? new PtySize(size.Cols, size.Rows) : null,
        Timeout = s.Timeout,
    };

    public static ProcessSelector ToSelector(ProcessRef p) => p.Pid is { } pid ? ProcessSelector.ByPid(pid) : ProcessSelector.ByTag(p.Tag!);

    public static AttachOptions ToOptions(ProcessAttach a) => new() { Replay = a.Replay, Deadline = a.Deadline, KeepaliveInterval = a.Keepalive };

    public static ProcessStreamItem ToItem(ProcessEvent e) => e switch
    {
        ProcessEvent.Started s => new ProcessStreamItem(ProcessStreamKind.Started, Pid: s.Pid, Pty: s.Pty, Skipped: s.SkippedBytes),
        ProcessEvent.Output o => new ProcessStreamItem(o.Kind switch
        {
            ProcessOutputKind.Stdout => ProcessStreamKind.Stdout,
            ProcessOutputKind.Stderr => ProcessStreamKind.Stderr,
            _ => ProcessStreamKind.Pty,
        }, o.Data),
        ProcessEvent.Keepalive => new ProcessStreamItem(ProcessStreamKind.Keepalive),
        ProcessEvent.Exited x => new ProcessStreamItem(ProcessStreamKind.Exit, Exit: ToContract(x)),
        _ => throw new AgentException("agent_unavailable", "unknown process event"),
    };

    public static FileChange ToChange(WatchEvent e) => e switch
    {
        WatchEvent.Started => new FileChange(FileChangeKind.Started),
        WatchEvent.Keepalive => new FileChange(FileChangeKind.Keepalive),
        WatchEvent.Change c => new FileChange(c.Kind switch
        {
            WatchEventKind.Create => FileChangeKind.Create,
            WatchEventKind.Write => FileChangeKind.Write,
            WatchEventKind.Remove => FileChangeKind.Remove,
            WatchEventKind.Rename => FileChangeKind.Rename,
            _ => FileChangeKind.Chmod,
        }, c.Name),
        _ => throw new AgentException("agent_unavailable", "unknown watch event"),
    };

    public static ProcessExitStatus ToContract(ProcessEvent.Exited x) => new(x.ExitCode, x.Signal, x.TimedOut, x.DurationMs);

    public static GuestProcess ToContract(ProcessInfo p) => new()
    {
        Pid = p.Pid,
        Tag = p.Tag,
        Cmd = p.Argv,
        Env = p.Env.Count == 0 ? null : p.Env,
        Cwd = p.Cwd,
        User = p.User,
        Pty = p.Pty is { } size ? new TerminalSize(size.Cols, size.Rows) : null,
        StdinOpen = p.StdinOpen,
        StartedAt = p.StartedAt,
        Running = p.Exit is null,
        Exit = p.Exit is { } x ? ToContract(x) : null,
    };

    public static FileEntry ToContract(AgentFileEntry e) =>
        new(e.Name, e.Type.ToString().ToLowerInvariant(), e.Size, e.Mode, e.ModifiedAt)
        {
            Path = e.Path,
            Permissions = e.Permissions,
            Owner = e.Owner,
            Group = e.Group,
            Target = e.SymlinkTarget,
        };
}
