using System.Globalization;

namespace Bough.Vmm.Tests;

/// <summary>
/// Host TSC frequency, for the guest kernel argument <c>tsc_early_khz=</c>.
/// Under TCG the guest's RDTSC reads the host TSC, but a Linux guest calibrates it against the
/// emulated PIT; on a loaded host that calibration fails ("Unable to calibrate against PIT",
/// "Marking TSC unstable") and the boot was observed to hang there indefinitely. Telling the
/// guest the frequency skips the calibration. Harmless under KVM, where the value is exact.
/// </summary>
/// <remarks>Test-only copy; the product uses Bough.HostSetup.HostClock.</remarks>
internal static class HostTsc
{
    /// <summary>Kernel argument such as <c>tsc_early_khz=2299998</c>, or null if the frequency is unknown.</summary>
    public static string? KernelArgument() => TryGetKhz() is int khz ? $"tsc_early_khz={khz.ToString(CultureInfo.InvariantCulture)}" : null;

    /// <summary>Host TSC frequency in kHz from /proc/cpuinfo ("cpu MHz" of a constant_tsc CPU), or null.</summary>
    public static int? TryGetKhz(string cpuinfoPath = "/proc/cpuinfo")
    {
        try
        {
            bool constant = false;
            double? mhz = null;
            foreach (string line in File.ReadLines(cpuinfoPath))
            {
                if (line.StartsWith("cpu MHz", StringComparison.Ordinal) && mhz is null)
                {
                    string value = line[(line.IndexOf(':') + 1)..].Trim();
                    if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0) mhz = v;
                }
                else if (line.StartsWith("flags", StringComparison.Ordinal))
                {
                    constant = line.Contains(" constant_tsc", StringComparison.Ordinal);
                }
                if (line.Length == 0 && mhz is not null) break; // first CPU is enough
            }
            return constant && mhz is double m ? (int)Math.Round(m * 1000) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
