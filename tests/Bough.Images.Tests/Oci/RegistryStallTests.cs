using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bough.Images.Oci;

namespace Bough.Images.Tests.Oci;

/// <summary>
/// A registry connection that goes quiet mid-blob must fail the pull, not hang it. The registry
/// is the real one; the fault is injected by a TCP relay in front of it that stops passing the
/// registry's bytes on after a budget per connection (what a dead NAT entry or a wedged proxy does).
/// </summary>
public sealed class RegistryStallTests(RegistryFixture fx) : IClassFixture<RegistryFixture>
{
    [Fact]
    public async Task A_blob_download_that_stalls_fails_as_registry_unavailable_and_leaves_no_partial_blob()
    {
        using var data = new TempDir();
        await using var relay = StallingRelay.Start(fx.Registry.Port, budgetBytes: 32 * 1024);
        var blobs = new BlobStore(data.Path);
        using var puller = new OciPuller(blobs, new RegistryOptions
        {
            RequestTimeout = TimeSpan.FromSeconds(20), StallTimeout = TimeSpan.FromSeconds(2),
        });

        // Without a stall guard the pull would wait forever; the test's own limit turns that into a failure.
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var sw = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ImageException>(() => puller.PullAsync(
            ImageReference.Parse($"127.0.0.1:{relay.Port}/test/busybox:1"), insecure: true, null, limit.Token));
        Assert.Equal("registry_unavailable", ex.Code);
        Assert.Contains("stalled", ex.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"the stalled pull took {sw.Elapsed.TotalSeconds:0} s to fail");
        Assert.True(relay.Stalled, "the relay never had to hold bytes back: the test did not test a stall");
        Assert.Empty(Directory.Exists(blobs.StagingDir) ? Directory.EnumerateFileSystemEntries(blobs.StagingDir) : []);
    }

    /// <summary>Relays TCP to a local port; per connection, forwards at most a budget of the server's bytes, then holds the rest.</summary>
    private sealed class StallingRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly int _target;
        private readonly long _budget;
        private volatile bool _stalled;

        private StallingRelay(int target, long budget) { _target = target; _budget = budget; }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public bool Stalled => _stalled;

        public static StallingRelay Start(int target, long budgetBytes)
        {
            var relay = new StallingRelay(target, budgetBytes);
            relay._listener.Start();
            _ = relay.AcceptLoopAsync();
            return relay;
        }

        private async Task AcceptLoopAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _ = RelayAsync(client);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        }

        private async Task RelayAsync(TcpClient client)
        {
            using var _ = client;
            using var server = new TcpClient();
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                var up = client.GetStream().CopyToAsync(server.GetStream(), _stop.Token);
                var down = CopyWithBudgetAsync(server.GetStream(), client.GetStream());
                await Task.WhenAny(up, down);
                await Task.Delay(Timeout.Infinite, _stop.Token); // keep the connection open, silent
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
        }

        private async Task CopyWithBudgetAsync(Stream from, Stream to)
        {
            var buffer = new byte[8192];
            long sent = 0;
            while (true)
            {
                var n = await from.ReadAsync(buffer, _stop.Token);
                if (n == 0) return;
                var allowed = (int)Math.Min(n, _budget - sent);
                if (allowed < n) _stalled = true;
                if (allowed > 0) await to.WriteAsync(buffer.AsMemory(0, allowed), _stop.Token);
                sent += allowed;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            _stop.Dispose();
        }
    }
}
