using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>
/// Sanity checks on guest answers. A guest that sends impossible values is treated exactly like one
/// that sends malformed frames: the channel is closed. Callers can then trust every value they get.
/// </summary>
internal static class Validation
{
    /// <summary>A process listing larger than this is a violation (the agent's table holds a few hundred).</summary>
    public const int MaxListedProcesses = 10_000;

    public static void Reply(ClientStream s, ReplyMessage r)
    {
        switch (s.Op)
        {
            case Ops.Exec:
                Require(s.Replies == 1 && r.Pid is > 0, "exec REPLY must come once with a pid");
                break;
            case Ops.Read:
                Require(s.Replies == 1 && r.Size is >= 0 && r.Mode is null or (>= 0 and <= 0xFFF), "read REPLY must come once with a size");
                break;
            case Ops.List:
                Require(r.Entries != null, "list REPLY without entries");
                s.ListedEntries += r.Entries!.Count;
                foreach (var e in r.Entries) Entry(e, allowRoot: false);
                break;
            case Ops.ProcStart or Ops.ProcAttach when !s.Detached:
                if (s.Replies == 1)
                {
                    Require(r.Pid is > 0 && r.Keepalive == null && r.Skipped is null or >= 0, "process stream must start with REPLY {pid}");
                    s.Pty = r.Pty == true;
                }
                else Require(r.Keepalive == true && r.Pid == null, "process stream REPLY after the first must be a keepalive");
                break;
            case Ops.ProcList:
                Require(r.Processes != null, "proc.list REPLY without processes");
                s.ListedEntries += r.Processes!.Count;
                Require(s.ListedEntries <= MaxListedProcesses, $"proc.list of more than {MaxListedProcesses} processes");
                foreach (var p in r.Processes) Process(p);
                break;
            case Ops.Watch:
                if (s.Replies == 1) Require(r.Watching == true, "watch must start with REPLY {watching}");
                else if (r.Keepalive == true) Require(r.Events == null, "watch keepalive with events");
                else
                {
                    Require(r.Events is { Count: > 0 }, "watch REPLY without events");
                    foreach (var e in r.Events!)
                        Require(RelativePath(e.Name) && e.Type is WatchEventTypes.Create or WatchEventTypes.Write or WatchEventTypes.Remove
                            or WatchEventTypes.Rename or WatchEventTypes.Chmod, "invalid watch event");
                }
                break;
            default:
                throw new ProtocolException($"unexpected REPLY for {s.Op}");
        }
    }

    public static void End(ClientStream s, EndMessage end)
    {
        if (end.Error is { } error)
        {
            Require(error.Code.Length is > 0 and <= 64 && error.Code.All(c => c is >= 'a' and <= 'z' or '_'), "invalid error code");
            if (error.Message.Length > 2000) error.Message = error.Message[..2000];
            return;
        }
        switch (s.Op)
        {
            case Ops.Exec:
                Exit(end.Exit, "invalid exec exit");
                break;
            case Ops.ProcStart when s.Detached:
                Require(end.Pid is > 0, "detached proc.start ended without a pid");
                break;
            case Ops.ProcStart or Ops.ProcAttach:
                Require(s.Replies >= 1, "process stream ended before REPLY {pid}");
                Exit(end.Exit, "invalid process exit");
                break;
            case Ops.Health:
                var h = end.Health;
                Require(h != null && h.AgentUptimeMs >= 0 && h.SystemUptimeMs >= 0 && h.AgentVersion.Length <= 64
                    && (h.BootId?.Length ?? 0) <= 64 && (h.Hostname?.Length ?? 0) <= 256, "invalid health");
                break;
            case Ops.Stat or Ops.Move:
                Require(end.Entry != null, $"{s.Op} without entry");
                Entry(end.Entry!, allowRoot: true);
                break;
            case Ops.Read:
                Require(s.Replies == 1, "read ended without announcing the size");
                break;
            case Ops.Watch:
                Require(s.Replies >= 1, "watch ended before REPLY {watching}");
                break;
        }
    }

    private static void Exit(ExitDto? x, string message) =>
        Require(x != null && x.ExitCode is >= 0 and <= 255 && x.DurationMs >= 0
            && (x.Signal == null || (x.Signal is >= 1 and <= 64 && x.ExitCode == 128 + x.Signal)), message);

    private static void Entry(FileEntryDto e, bool allowRoot)
    {
        bool nameOk = (allowRoot && e.Name == "/")
            || (e.Name.Length is > 0 and <= 1024 && e.Name is not ("." or "..") && !e.Name.Contains('/') && !e.Name.Contains('\0'));
        bool pathOk = e.Path == null || (RelativePath(e.Path) && (e.Path == e.Name || e.Path.EndsWith("/" + e.Name, StringComparison.Ordinal)));
        bool extrasOk = Name(e.Owner) && Name(e.Group) && (e.Target == null || (e.Target.Length <= ProtocolConstants.MaxPathLength && !e.Target.Contains('\0')));
        Require(nameOk && pathOk && extrasOk && e.Type is "file" or "dir" or "symlink" or "other" && e.Size >= 0 && e.Mode is >= 0 and <= 0xFFF,
            $"invalid file entry '{(e.Name.Length > 64 ? e.Name[..64] : e.Name)}'");
    }

    private static void Process(ProcessInfoDto p)
    {
        bool ok = p.Pid > 0 && p.Argv is { Count: > 0 and <= 65536 } && p.Argv.All(a => a != null)
            && (p.Tag == null || p.Tag.Length is > 0 and <= ProcessLimits.MaxTagLength)
            && p.Cwd.Length <= ProtocolConstants.MaxPathLength && (p.User?.Length ?? 0) <= 256
            && (p.Env == null || (p.Env.Count <= 4096 && p.Env.All(kv => kv.Key.Length > 0 && kv.Value != null)))
            && (p.Pty == null || (p.Pty.Cols is >= 1 and <= ProcessLimits.MaxPtyDimension && p.Pty.Rows is >= 1 and <= ProcessLimits.MaxPtyDimension));
        Require(ok, $"invalid process entry {p.Pid}");
        if (p.Exit != null) Exit(p.Exit, $"invalid exit of process {p.Pid}");
    }

    /// <summary>A path below a directory: <c>a/b.txt</c>; no empty, <c>.</c> or <c>..</c> segments, no NUL, at most PATH_MAX.</summary>
    private static bool RelativePath(string? path) =>
        !string.IsNullOrEmpty(path) && path.Length <= ProtocolConstants.MaxPathLength && !path.Contains('\0')
        && path.Split('/').All(seg => seg.Length > 0 && seg is not ("." or ".."));

    private static bool Name(string? name) => name == null || (name.Length is > 0 and <= 256 && !name.Any(char.IsControl));

    public static AgentFileEntry ToEntry(FileEntryDto e, string? path = null) => new(
        e.Name,
        e.Type switch { "file" => AgentFileType.File, "dir" => AgentFileType.Dir, "symlink" => AgentFileType.Symlink, _ => AgentFileType.Other },
        e.Size,
        e.Mode,
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(e.MtimeMs, -62135596800000L, 253402300799999L)))
    {
        Path = path, Uid = e.Uid, Gid = e.Gid, Owner = e.Owner, Group = e.Group, SymlinkTarget = e.Target,
    };

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ProtocolException(message);
    }
}
