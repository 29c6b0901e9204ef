using System.Diagnostics;
using Bough.AgentClient;
using Bough.HostSetup;
using Microsoft.Extensions.Logging.Abstractions;
using Bough.Images.Kernel;

namespace Bough.Images.Tests.Rootfs;

/// <summary>
/// A running QEMU microvm (TCG) booted from an image through a qcow2 overlay, with the agent port
/// on a unix socket and the serial console in a file, wired the way the engine does it. Disposing kills it.
/// </summary>
public sealed class GuestVm : IAsyncDisposable
{
    private readonly Process _qemu;
    private readonly Task<string> _stderr;
    public string ConsolePath { get; }
    public AgentConnection Agent { get; private set; } = null!;

    private GuestVm(Process qemu, string console)
    {
        _qemu = qemu;
        ConsolePath = console;
        _stderr = qemu.StandardError.ReadToEndAsync();
    }

    public string Console()
    {
        try
        {
            using var fs = new FileStream(ConsolePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(fs).ReadToEnd();
        }
        catch (IOException) { return ""; }
    }

    public static async Task<GuestVm> BootAsync(GuestKernel kernel, string imageDisk, string workDir, TimeSpan timeout, int memoryMiB = 512)
    {
        var overlay = Path.Combine(workDir, "overlay.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", imageDisk, "-F", "qcow2", overlay]);
        var sock = Path.Combine(workDir, "agent.sock");
        var console = Path.Combine(workDir, "console.log");
        var psi = new ProcessStartInfo("qemu-system-x86_64")
        {
            RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", memoryMiB.ToString(), "-smp", "1", "-no-reboot",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", kernel.KernelPath, "-initrd", kernel.InitrdPath, "-append", kernel.CommandLine,
            "-serial", "file:" + console,
            "-blockdev", $"driver=qcow2,node-name=root,file.driver=file,file.filename={overlay}",
            "-device", "virtio-blk-device,drive=root",
            "-device", "virtio-serial-device",
            "-chardev", $"socket,id=agent,path={sock},server=on,wait=off",
            "-device", $"virtserialport,chardev=agent,name={GuestMarkers.AgentPortName}",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
        }) psi.ArgumentList.Add(a);
        var vm = new GuestVm(Process.Start(psi)!, console);
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            var connect = AgentConnection.ConnectAsync(sock, NullLogger.Instance, timeout, cts.Token);
            while (!connect.IsCompleted)
            {
                if (vm._qemu.HasExited || vm.Console().Contains(GuestMarkers.InitFailed))
                    throw new InvalidOperationException($"guest failed to boot:\n{vm.Console()}\n{(vm._qemu.HasExited ? await vm._stderr : "")}");
                await Task.WhenAny(connect, Task.Delay(200));
            }
            vm.Agent = await connect;
            return vm;
        }
        catch (Exception e) when (e is not InvalidOperationException)
        {
            var text = vm.Console();
            await vm.DisposeAsync();
            throw new InvalidOperationException($"agent did not come up: {e.Message}\n--- console:\n{text}", e);
        }
        catch
        {
            await vm.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Agent != null) await Agent.DisposeAsync();
        CommandRunner.Kill(_qemu);
        await _qemu.WaitForExitAsync();
        _qemu.Dispose();
    }
}

public static class GuestExec
{
    public static async Task<(int Code, string Out, string Err)> Run(this AgentConnection c, ExecSpec spec, int timeoutSeconds = 120)
    {
        var (exit, o, e) = await c.RunToCompletionAsync(spec, new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds)).Token);
        return (exit.ExitCode, System.Text.Encoding.UTF8.GetString(o), System.Text.Encoding.UTF8.GetString(e));
    }

    public static async Task<string> Out(this AgentConnection c, ExecSpec spec)
    {
        var (code, o, e) = await c.Run(spec);
        Assert.True(code == 0, $"{string.Join(' ', spec.Argv)} exited {code}: {e}");
        return o;
    }
}
