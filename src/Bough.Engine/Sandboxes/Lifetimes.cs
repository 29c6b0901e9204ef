using System.Globalization;
using Bough.Catalog;
using Bough.Contracts;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// A sandbox's lifetime as a request asks for it: how long it may run (null: no deadline) and
/// what its deadline does. The clock starts when the sandbox runs (not when its create began:
/// a slow boot must not eat the lifetime), and a paused sandbox has no deadline: a resume
/// starts a new lifetime (its request's, else the daemon's default), as in E2B.
/// </summary>
internal sealed record Lifetime(TimeSpan? Timeout, TimeoutAction OnTimeout)
{
    public DateTimeOffset? EndAt(DateTimeOffset now) => Timeout is { } t ? now + t : null;

    /// <summary>
    /// The lifetime a request asks for: <paramref name="timeoutSeconds"/>, else the daemon's
    /// <see cref="EngineOptions.DefaultTimeout"/>; <paramref name="onTimeout"/>, else <paramref name="fallback"/>.
    /// </summary>
    /// <exception cref="BoughException">invalid_request naming the field and the allowed range.</exception>
    public static Lifetime Resolve(int? timeoutSeconds, string? onTimeout, EngineOptions options,
        TimeoutAction fallback = TimeoutAction.Kill, string prefix = "")
    {
        var timeout = timeoutSeconds is { } s ? Seconds(s, options, prefix + "timeoutSeconds") : options.DefaultTimeout;
        return new Lifetime(timeout, ParseAction(onTimeout, fallback, prefix + "onTimeout"));
    }

    /// <summary>A requested number of seconds, checked against 1 and <see cref="EngineOptions.MaxTimeout"/>.</summary>
    public static TimeSpan Seconds(int seconds, EngineOptions options, string field)
    {
        var max = options.MaxTimeout is { } m ? (long)m.TotalSeconds : int.MaxValue;
        if (seconds < 1 || seconds > max)
            throw BoughException.Invalid(string.Create(CultureInfo.InvariantCulture, $"{field} must be between 1 and {max} (got {seconds})"));
        return TimeSpan.FromSeconds(seconds);
    }

    public static TimeoutAction ParseAction(string? value, TimeoutAction fallback, string field = "onTimeout") => value switch
    {
        null => fallback,
        TimeoutActions.Kill => TimeoutAction.Kill,
        TimeoutActions.Pause => TimeoutAction.Pause,
        _ => throw BoughException.Invalid($"{field} must be \"{TimeoutActions.Kill}\" or \"{TimeoutActions.Pause}\" (got \"{value}\")"),
    };

    public static string ToName(TimeoutAction action) => action == TimeoutAction.Pause ? TimeoutActions.Pause : TimeoutActions.Kill;
}
