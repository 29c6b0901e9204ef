using Bough.Dashboard.Components.Shared;

namespace Bough.Dashboard.Components.SandboxView;

/// <summary>How the sandbox page writes times, durations and sizes: short, invariant, the same in every panel.</summary>
internal static class SandboxFormat
{
    /// <summary>A point in time in UTC, to the second.</summary>
    public static string Time(DateTimeOffset t) => Units.Time(t);

    /// <summary>How long ago <paramref name="t"/> was.</summary>
    public static string Age(DateTimeOffset t) => Span(DateTimeOffset.UtcNow - t);

    /// <summary>How long until <paramref name="t"/> (0s once past).</summary>
    public static string Left(DateTimeOffset t) => Span(t - DateTimeOffset.UtcNow);

    /// <summary>A duration as its two largest units (<see cref="Units.Duration"/>).</summary>
    public static string Span(TimeSpan d) => Units.Duration(d);

    /// <summary>A byte count in binary units (<see cref="Units.Bytes"/>).</summary>
    public static string Bytes(long n) => Units.Bytes(n);
}
