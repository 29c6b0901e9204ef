using Bough.Contracts;
using Bough.Engine.Sandboxes;

namespace Bough.Engine.Guest;

/// <summary>Checks of process-table and file input, before anything reaches the guest (which checks again).</summary>
internal static class ProcessValidation
{
    public const int MaxTagLength = 256;
    public const int MaxTerminalDimension = 4096;
    public const int MaxListDepth = 64;
    public static readonly TimeSpan MaxDeadline = TimeSpan.FromDays(7);
    public static readonly TimeSpan MinKeepalive = TimeSpan.FromMilliseconds(100), MaxKeepalive = TimeSpan.FromHours(1);

    /// <summary>The same rules as exec for argv, env, cwd (normalised), user and timeout; then tag and terminal size.</summary>
    public static ProcessStart Validate(ProcessStart s)
    {
        ArgumentNullException.ThrowIfNull(s);
        RequestValidation.ValidateExec(new ExecCommand(s.Argv, s.Env, s.Cwd, default, s.Timeout, s.User));
        if (s.Tag is not null) ValidateTag(s.Tag);
        if (s.Pty is not null) Validate(s.Pty);
        return s with { Cwd = s.Cwd is null ? null : GuestPaths.Normalize(s.Cwd) };
    }

    public static ProcessRef Validate(ProcessRef p)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.Pid is { } pid && pid <= 0)
            throw BoughException.Invalid($"pid must be a positive process id (got {pid})");
        if (p.Tag is { } tag) ValidateTag(tag);
        return p;
    }

    public static TerminalSize Validate(TerminalSize size)
    {
        ArgumentNullException.ThrowIfNull(size);
        if (size.Cols is < 1 or > MaxTerminalDimension || size.Rows is < 1 or > MaxTerminalDimension)
            throw BoughException.Invalid($"terminal cols and rows must be between 1 and {MaxTerminalDimension} (got {size.Cols}x{size.Rows})");
        return size;
    }

    public static ProcessAttach Validate(ProcessAttach a)
    {
        ArgumentNullException.ThrowIfNull(a);
        if (a.Deadline is { } d && (d < TimeSpan.FromMilliseconds(1) || d > MaxDeadline))
            throw BoughException.Invalid($"the stream deadline must be between 1 ms and {MaxDeadline.TotalDays} days");
        ValidateKeepalive(a.Keepalive);
        return a;
    }

    public static void ValidateKeepalive(TimeSpan? keepalive)
    {
        if (keepalive is { } k && (k < MinKeepalive || k > MaxKeepalive))
            throw BoughException.Invalid($"the keepalive interval must be between {MinKeepalive.TotalMilliseconds} ms and {MaxKeepalive.TotalHours} h");
    }

    public static int ValidateDepth(int depth) =>
        depth is >= 1 and <= MaxListDepth ? depth : throw BoughException.Invalid($"depth must be between 1 and {MaxListDepth} (got {depth})");

    private static void ValidateTag(string tag)
    {
        if (tag.Length is 0 or > MaxTagLength || tag.Any(char.IsControl))
            throw BoughException.Invalid($"tag must be 1-{MaxTagLength} characters without control characters");
    }
}
