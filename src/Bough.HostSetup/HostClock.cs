using System.Runtime.Intrinsics.X86;

namespace Bough.HostSetup;

/// <summary>
/// The host's TSC frequency, which guests need to be told. Under TCG the guest TSC is the host TSC,
/// but a guest kernel calibrating it against the emulated PIT fails whenever the host is busy (the
/// vCPU thread gets descheduled inside the measuring window): it then marks the TSC unstable, finds
/// no HPET/PM timer on microvm and hangs at boot. Passing <c>tsc_early_khz</c> skips that calibration.
/// </summary>
public static class HostClock
{
    /// <summary>TSC frequency in kHz, or null when the host does not reveal it reliably.</summary>
    public static long? TscKhz() => FromCpuid() ?? FromCpuinfo();

    /// <summary>Kernel argument for the guest, or an empty string when the frequency is unknown.</summary>
    public static string GuestKernelArg() => TscKhz() is { } khz ? $"tsc_early_khz={khz}" : "";

    /// <summary>CPUID leaf 0x15 (TSC/crystal ratio and crystal Hz) or the hypervisor timing leaf 0x40000010.</summary>
    private static long? FromCpuid()
    {
        if (!X86Base.IsSupported) return null;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        if (maxLeaf >= 0x15)
        {
            var (den, num, crystalHz, _) = X86Base.CpuId(0x15, 0);
            if (den != 0 && num != 0 && crystalHz != 0)
                return (long)crystalHz * num / den / 1000;
        }
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        var underHypervisor = (ecx1 & (1 << 31)) != 0;
        if (underHypervisor)
        {
            var (maxHv, _, _, _) = X86Base.CpuId(unchecked((int)0x40000000), 0);
            if ((uint)maxHv >= 0x40000010)
            {
                var (tscKhz, _, _, _) = X86Base.CpuId(unchecked((int)0x40000010), 0);
                if (tscKhz > 0) return tscKhz;
            }
        }
        return null;
    }

    /// <summary>
    /// "cpu MHz" equals the kernel's calibrated TSC rate only where APERF/MPERF are absent (typically
    /// in VMs); with them it shows the current, varying clock, which would mislead the guest.
    /// </summary>
    private static long? FromCpuinfo()
    {
        try
        {
            string? mhz = null, flags = null;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (mhz is null && line.StartsWith("cpu MHz", StringComparison.Ordinal)) mhz = line[(line.IndexOf(':') + 1)..].Trim();
                if (flags is null && line.StartsWith("flags", StringComparison.Ordinal)) flags = " " + line[(line.IndexOf(':') + 1)..] + " ";
                if (mhz is not null && flags is not null) break;
            }
            if (mhz is null || flags is null || flags.Contains(" aperfmperf ") || !flags.Contains(" constant_tsc ")) return null;
            return double.TryParse(mhz, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 100 ? (long)(v * 1000) : null;
        }
        catch (IOException) { return null; }
    }
}
