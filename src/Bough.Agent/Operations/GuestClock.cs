using System.Globalization;

namespace Bough.Agent.Operations;

/// <summary>
/// Picks the time to set the guest's clock to. The host sends its clock with configure, but that reading ages while
/// the message waits: on a busy TCG host a restored guest's vCPU can take seconds (tens, measured) to get to it, and
/// a clock set from it stays behind by that long. The VM's RTC, which QEMU computes from the host's clock whenever it
/// is read (restored VMs included), is never stale but counts whole seconds. So: the host's time when it agrees with
/// the RTC's second (or is ahead of it, which a stale message cannot be), else the middle of the RTC's second.
/// </summary>
internal static class GuestClock
{
    private const string RtcSinceEpoch = "/sys/class/rtc/rtc0/since_epoch";

    /// <summary>How far a host time may lag the RTC before the RTC is distrusted instead (a VM whose RTC does not follow UTC).</summary>
    private const long MaxTrustedLagMs = 10 * 60 * 1000;

    public static long Choose(long hostMs, long? rtcSeconds)
    {
        if (rtcSeconds is not { } rtc) return hostMs;
        long secondStart = rtc * 1000;
        long lag = secondStart - hostMs;
        return lag <= 0 || lag > MaxTrustedLagMs ? hostMs : secondStart + 500;
    }

    /// <summary>The RTC's seconds since the epoch, or null when the VM has none.</summary>
    public static long? ReadRtcSeconds()
    {
        var text = AgentState.ReadTrimmed(RtcSinceEpoch);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
    }
}
