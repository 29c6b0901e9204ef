using Bough.HostSetup;
using Bough.Images;
using Bough.Images.Kernel;
using Bough.Images.Publish;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Setup;

/// <summary>
/// Brings a host from "fresh Debian" to "can boot sandboxes": host packages, guest kernel,
/// base image, acceleration decision. Each step is idempotent and cached on disk, so a
/// warm start costs a few stat calls and hash checks.
/// </summary>
public sealed class HostPreparer(ILoggerFactory loggers)
{
    public async Task<PreparedHost> PrepareAsync(EngineOptions options, IProgress<SetupProgress>? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(options.DataDir);

        var requirements = new HostRequirements();
        if (requirements.Missing().Count > 0)
            await requirements.InstallMissingAsync(progress, ct);

        // The group (and user) every sandbox's QEMU runs in, with its own uid.
        await VmAccount.EnsureAsync(progress, ct);

        var kernel = await new KernelProvider(options.DataDir, loggers.CreateLogger<KernelProvider>())
            .EnsureAsync(progress, ct);

        var agentPath = AgentLocator.Find() ?? throw new SetupException(
            "the guest agent binary (bough-agent) was not found next to the daemon; " +
            "build with ./bough (which publishes it) or set BOUGH_AGENT_PATH");

        var image = await new BaseImageBuilder(options.DataDir, kernel, agentPath, loggers.CreateLogger<BaseImageBuilder>())
            .EnsureBaseAsync(progress, ct);

        progress?.Report(new SetupProgress("accel", $"choosing acceleration ({options.Accel})"));
        var accel = await new AccelerationProbe()
            .DecideAsync(options.Accel, kernel.KernelPath, kernel.InitrdPath, options.DataDir, ct);

        return new PreparedHost(kernel, image, accel, agentPath);
    }
}
