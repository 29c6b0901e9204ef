using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>
/// Sanity checks on guest answers. A guest that sends impossible values is treated exactly like one
/// that sends malformed frames: the channel is closed. Callers can then trust every value they get.
/// </summary>
internal static class Validation
{
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
                var x = end.Exit;
                Require(x != null && x.ExitCode is >= 0 and <= 255 && x.DurationMs >= 0
                    && (x.Signal == null || (x.Signal is >= 1 and <= 64 && x.ExitCode == 128 + x.Signal)), "invalid exec exit");
                break;
            case Ops.Health:
                var h = end.Health;
                Require(h != null && h.AgentUptimeMs >= 0 && h.SystemUptimeMs >= 0 && h.AgentVersion.Length <= 64
                    && (h.BootId?.Length ?? 0) <= 64 && (h.Hostname?.Length ?? 0) <= 256, "invalid health");
                break;
            case Ops.Stat:
                Require(end.Entry != null, "stat without entry");
                Entry(end.Entry!, allowRoot: true);
                break;
            case Ops.Read:
                Require(s.Replies == 1, "read ended without announcing the size");
                break;
        }
    }

    private static void Entry(FileEntryDto e, bool allowRoot)
    {
        bool nameOk = (allowRoot && e.Name == "/")
            || (e.Name.Length is > 0 and <= 1024 && e.Name is not ("." or "..") && !e.Name.Contains('/') && !e.Name.Contains('\0'));
        Require(nameOk && e.Type is "file" or "dir" or "symlink" or "other" && e.Size >= 0 && e.Mode is >= 0 and <= 0xFFF,
            $"invalid file entry '{(e.Name.Length > 64 ? e.Name[..64] : e.Name)}'");
    }

    public static AgentFileEntry ToEntry(FileEntryDto e) => new(
        e.Name,
        e.Type switch { "file" => AgentFileType.File, "dir" => AgentFileType.Dir, "symlink" => AgentFileType.Symlink, _ => AgentFileType.Other },
        e.Size,
        e.Mode,
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(e.MtimeMs, -62135596800000L, 253402300799999L)));

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ProtocolException(message);
    }
}
