using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>Sandbox metrics, measured on the host from a real VM: the JSON endpoint, the client, and the Prometheus text.</summary>
[Collection("daemon")]
public sealed partial class MetricsTests(DaemonFixture f)
{
    [Fact]
    public async Task A_running_sandbox_reports_cpu_resident_memory_and_disk()
    {
        var stats = await f.Daemon.Client.GetSandboxStatsAsync(f.Primary.Id);
        Assert.Equal(f.Primary.Id, stats.Id);
        Assert.Equal(SandboxStates.Running, stats.State);
        Assert.NotNull(stats.CpuPercent);
        Assert.InRange(stats.CpuPercent!.Value, 0, 100);
        Assert.True(stats.MemoryResidentBytes > 0, $"resident {stats.MemoryResidentBytes}");
        Assert.Equal(f.Primary.MemoryMiB * 1024L * 1024, stats.MemoryLimitBytes);
        Assert.True(stats.DiskUsedBytes > 0, $"disk {stats.DiskUsedBytes}");

        var unknown = await Assert.ThrowsAsync<BoughApiException>(() => f.Daemon.Client.GetSandboxStatsAsync("sb-nosuchsandbox"));
        Assert.Equal(ErrorCodes.SandboxNotFound, unknown.Code);
    }

    [Fact]
    public async Task Prometheus_text_parses_and_lists_the_sandbox_behind_the_token()
    {
        var text = await f.Daemon.Client.GetPrometheusMetricsAsync();
        var samples = Parse(text);
        Assert.True(samples.TryGetValue("bough_sandboxes{state=\"running\"}", out var running) && running >= 1, text);
        var labels = $"{{sandbox=\"{f.Primary.Id}\",state=\"running\"}}";
        Assert.True(samples.TryGetValue("bough_sandbox_memory_resident_bytes" + labels, out var rss) && rss > 0, text);
        Assert.True(samples.ContainsKey("bough_sandbox_cpu_percent" + labels), text);
        Assert.True(samples.TryGetValue("bough_sandbox_disk_used_bytes" + labels, out var disk) && disk > 0, text);
        Assert.True(samples.TryGetValue("bough_host_memory_committed_bytes", out var committed)
                    && committed >= f.Primary.MemoryMiB * 1024.0 * 1024, text);

        using var anonymous = new HttpClient { BaseAddress = f.Daemon.Url };
        using var refused = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", f.Daemon.Token);
        using var ok = await anonymous.SendAsync(request);
        Assert.Equal("text/plain", ok.Content.Headers.ContentType?.MediaType);
        Assert.Contains(ok.Content.Headers.ContentType!.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
    }

    /// <summary>
    /// A strict reader of the exposition format: every line is a HELP or TYPE comment or
    /// <c>name{labels} value</c>, every family is declared before its samples, no sample repeats.
    /// </summary>
    private static Dictionary<string, double> Parse(string text)
    {
        var declared = new HashSet<string>(StringComparer.Ordinal);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                var m = Comment().Match(line);
                Assert.True(m.Success, $"bad comment line: {line}");
                if (m.Groups[1].Value == "TYPE")
                    Assert.True(declared.Add(m.Groups[2].Value), $"family declared twice: {line}");
                continue;
            }
            var s = SampleLine().Match(line);
            Assert.True(s.Success, $"bad sample line: {line}");
            Assert.Contains(s.Groups[1].Value, declared);
            var value = double.Parse(s.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
            Assert.True(samples.TryAdd(s.Groups[1].Value + s.Groups[2].Value, value), $"sample twice: {line}");
        }
        return samples;
    }

    [GeneratedRegex("^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$")]
    private static partial Regex Comment();

    [GeneratedRegex("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\.)*\",?)*\\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$")]
    private static partial Regex SampleLine();
}
