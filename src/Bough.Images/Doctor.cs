using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Publish;

namespace Bough.Images;

/// <summary>
/// The complete <c>bough doctor</c>: the host checks of <see cref="HostDoctor"/> (packages with
/// versions, data dir, free disk, acceleration and why), then the checks of what the image pipeline
/// produced: the guest kernel and whether the base image exists and matches the current inputs.
/// This is the one place for image checks; HostSetup cannot see images. Read-only apart from the
/// KVM probe's cache.
/// </summary>
public static class Doctor
{
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(string dataDir, string accelRequested, CancellationToken ct,
        string? agentPath = null)
    {
        var kernel = new KernelProvider(dataDir).TryGet();
        var results = new List<CheckResult>(await HostDoctor.RunAsync(dataDir, accelRequested, ct, kernel?.KernelPath, kernel?.InitrdPath));
        results.Add(CheckKernel(kernel));
        results.Add(await CheckBaseImageAsync(dataDir, kernel, agentPath ?? AgentLocator.Find(), ct));
        return results;
    }

    private static CheckResult CheckKernel(GuestKernel? kernel) => kernel is null
        ? new CheckResult("guest kernel", false, "not installed", "run 'bough setup' (downloads Debian's cloud kernel, ~27 MB)")
        : new CheckResult("guest kernel", true, $"{kernel.Version} ({kernel.KernelPath})");

    private static async Task<CheckResult> CheckBaseImageAsync(string dataDir, GuestKernel? kernel, string? agentPath, CancellationToken ct)
    {
        var builder = new BaseImageBuilder(dataDir, kernel ?? new GuestKernel("", "", "none", ""), agentPath ?? "/nonexistent");
        var image = builder.TryGet(BaseImageBuilder.BaseName);
        if (image is null)
            return new CheckResult("base image", false, "not built", "run 'bough setup'");
        if (kernel is null || agentPath is null || !File.Exists(agentPath))
            return new CheckResult("base image", true,
                $"present ({image.DiskPath}, built {image.BuiltAt:u}); cannot tell if current: " +
                (kernel is null ? "no guest kernel" : "agent binary not found")) { Warning = true };
        try
        {
            return await builder.IsBaseCurrentAsync(ct)
                ? new CheckResult("base image", true, $"current ({image.DiskPath}, built {image.BuiltAt:u})")
                : new CheckResult("base image", false, $"out of date (agent, busybox, libraries or recipe changed since {image.BuiltAt:u})",
                    "run 'bough setup' to rebuild it");
        }
        catch (SetupException e)
        {
            return new CheckResult("base image", false, "cannot check: " + e.Message);
        }
    }
}
