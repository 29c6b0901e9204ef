using System.Net.Sockets;
using Bough.HostSetup;
using Xunit.Abstractions;
using Bough.Images.Publish;

namespace Bough.Images.Tests;

[Collection("guest")]
public class BootTests(GuestFixture fx, ITestOutputHelper output)
{
    /// <summary>
    /// Boots the base image through an overlay the way sandboxes do (disk, agent port, user-mode
    /// network) and waits for the init marker and the agent. Uses the real agent when one is found
    /// (BOUGH_AGENT_PATH or the copy Build/Agent.targets publishes next to the tests), else a stand-in.
    /// </summary>
    [Fact]
    public async Task Base_image_boots_to_init_marker_and_agent_under_tcg()
    {
        using var tmp = new TempDir();
        var realAgent = AgentLocator.Find() is { } found && File.Exists(found) ? found : null;
        var agent = realAgent ?? StandInAgent.Write(tmp.Path);
        output.WriteLine("agent: " + (realAgent ?? "stand-in script"));

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var image = await new BaseImageBuilder(GuestFixture.CacheDataDir, fx.Kernel, agent).EnsureBaseAsync(null, CancellationToken.None);
        output.WriteLine($"ensure base: {sw.Elapsed.TotalSeconds:0.0} s -> {image.DiskPath}");

        var overlay = Path.Combine(tmp.Path, "overlay.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.DiskPath, "-F", "qcow2", overlay]);
        var sock = Path.Combine(tmp.Path, "agent.sock");
        Socket? client = null;
        string[] args =
        [
            "-blockdev", $"driver=qcow2,node-name=root,file.driver=file,file.filename={overlay}",
            "-device", "virtio-blk-device,drive=root",
            "-device", "virtio-serial-device",
            "-chardev", $"socket,id=agent,path={sock},server=on,wait=off",
            "-device", $"virtserialport,chardev=agent,name={GuestMarkers.AgentPortName}",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
        ];
        var agentLine = realAgent is not null ? "bough-agent info:" : "standin-net:";
        try
        {
            var r = await Qemu.BootAsync(fx.Kernel, "", args, tmp.Path,
                c => c.Contains(GuestMarkers.InitDone) && c.Contains(agentLine) || c.Contains(GuestMarkers.InitFailed),
                TimeSpan.FromSeconds(120),
                afterStart: async () =>
                {
                    // A guest write to the port blocks while no host client is connected; connect like the engine would.
                    for (var i = 0; i < 50 && client is null; i++)
                    {
                        try
                        {
                            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                            await s.ConnectAsync(new UnixDomainSocketEndPoint(sock));
                            client = s;
                        }
                        catch (SocketException) { await Task.Delay(100); }
                    }
                });
            output.WriteLine($"boot: {r.Elapsed.TotalSeconds:0.00} s\n{r.Console}\n{r.Stderr}");
            Assert.True(r.Matched, "boot did not reach the markers:\n" + r.Console + r.Stderr);
            Assert.DoesNotContain(GuestMarkers.InitFailed, r.Console);
            Assert.Contains(GuestMarkers.InitDone, r.Console);
            if (realAgent is null)
            {
                Assert.Contains(StandInAgent.StartedLine, r.Console);
                Assert.Contains("libgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1", r.Console);
                Assert.Contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6", r.Console);
                Assert.DoesNotContain("not found", r.Console);
                Assert.Contains("DOTNET_BUNDLE_EXTRACT_BASE_DIR=/var/lib/bough-agent", r.Console);
                Assert.Contains(GuestMarkers.AgentPortName, r.Console);
                Assert.Contains("10.0.2.15/24", r.Console);
                Assert.Contains("default via 10.0.2.2", r.Console);
            }
        }
        finally
        {
            client?.Dispose();
        }
    }
}
