using Bough.Engine.Images;
using Microsoft.Extensions.Time.Testing;

namespace Bough.Engine.Tests.Images;

/// <summary>
/// The throttle that keeps image progress on the event stream to four a second per operation, on a fake clock (the
/// engine's <see cref="TimeProvider"/> seam) so the counts are exact.
/// </summary>
public sealed class ImageProgressThrottleTests
{
    private static readonly TimeSpan Interval = ImageEvents.ProgressInterval;

    [Fact]
    public void The_first_report_publishes_at_once_and_a_burst_becomes_one_trailing_publication()
    {
        var clock = new FakeTimeProvider();
        var published = 0;
        using var throttle = new ImageProgressThrottle(() => published++, clock, Interval);

        throttle.Report();
        Assert.Equal(1, published);
        for (var i = 0; i < 20; i++) throttle.Report();
        Assert.Equal(1, published);

        clock.Advance(Interval - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, published);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, published); // the burst's last state, at the end of the interval

        clock.Advance(Interval * 4);
        Assert.Equal(2, published); // nothing changed since: nothing more
        throttle.Report();
        Assert.Equal(3, published); // quiet for an interval: at once again
    }

    [Fact]
    public void A_steady_stream_of_reports_publishes_at_most_four_a_second()
    {
        var clock = new FakeTimeProvider();
        var at = new List<DateTimeOffset>();
        using var throttle = new ImageProgressThrottle(() => at.Add(clock.GetUtcNow()), clock, Interval);

        for (var i = 0; i < 300; i++) // three seconds of a report every 10 ms
        {
            throttle.Report();
            clock.Advance(TimeSpan.FromMilliseconds(10));
        }

        Assert.InRange(at.Count, 10, 13); // 0, 250, ..., 3000 ms
        Assert.All(at.Zip(at.Skip(1)), p => Assert.True(p.Second - p.First >= Interval, $"{p.First:ss.fff} then {p.Second:ss.fff}"));
        foreach (var start in at)
            Assert.True(at.Count(t => t >= start && t < start + TimeSpan.FromSeconds(1)) <= 4, $"more than 4 within a second from {start:ss.fff}");
    }

    [Fact]
    public void After_close_nothing_is_published_not_even_a_pending_trailing_one()
    {
        var clock = new FakeTimeProvider();
        var published = 0;
        var throttle = new ImageProgressThrottle(() => published++, clock, Interval);
        throttle.Report();
        throttle.Report(); // pending: due at the end of the interval

        throttle.Close();
        clock.Advance(Interval * 2);
        throttle.Report();
        clock.Advance(Interval * 2);

        Assert.Equal(1, published);
    }
}
