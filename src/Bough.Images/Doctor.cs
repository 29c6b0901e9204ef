using Bough.HostSetup;

namespace Bough.Images;

/// <summary>
/// The complete <c>bough doctor</c>: host checks from <see cref="HostDoctor"/> (packages with versions,
/// data dir, free disk, acceleration and why) plus the guest kernel and whether the base image
/// exists and matches the current inputs. Read-only apart from the KVM probe's cache.
/// </summary>
public static class Doctor
{
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(string dataDir, string accelRequested, CancellationToken ct,
        string? agentPath = null)
    {
        var kernel = new KernelProvider(dataDir).TryGet();
        var results = new List<CheckResult>(await HostDoctor.RunAsync(dataDir, accelRequested, ct, kernel?.KernelPath, kernel?.InitrdPath));

        results.Add(kernel is null
            ? new CheckResult("guest kernel", false, "not installed", "run 'bough setup' (downloads Debian's cloud kernel, ~27 MB)")
            : new CheckResult("guest kernel", true, $"{kernel.Version} ({kernel.KernelPath})"));

        agentPath ??= AgentLocator.Find();
        var builder = new ImageBuilder(dataDir, kernel ?? new GuestKernel("", "", "none", ""), agentPath ?? "/nonexistent");
        var image = builder.TryGet(ImageBuilder.BaseName);
        if (image is null)
            results.Add(new CheckResult("base image", false, "not built", "run 'bough setup'"));
        else if (kernel is null || agentPath is null || !File.Exists(agentPath))
            results.Add(new CheckResult("base image", true,
                $"present ({image.DiskPath}, built {image.BuiltAt:u}); cannot tell if current: " +
                (kernel is null ? "no guest kernel" : "agent binary not found")) { Warning = true });
        else
        {
            try
            {
                var current = await builder.IsBaseCurrentAsync(ct);
                results.Add(current
                    ? new CheckResult("base image", true, $"current ({image.DiskPath}, built {image.BuiltAt:u})")
                    : new CheckResult("base image", false, $"out of date (agent, busybox, libraries or recipe changed since {image.BuiltAt:u})",
                        "run 'bough setup' to rebuild it"));
            }
            catch (SetupException e)
            {
                results.Add(new CheckResult("base image", false, "cannot check: " + e.Message));
            }
        }
        return results;
    }
}
