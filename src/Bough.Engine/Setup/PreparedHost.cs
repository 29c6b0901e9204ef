using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Publish;

namespace Bough.Engine.Setup;

/// <summary>What the engine needs from host setup before it can boot anything.</summary>
public sealed record PreparedHost(GuestKernel Kernel, BaseImage BaseImage, AccelDecision Accel, string AgentPath)
{
    /// <summary>
    /// The guest kernel's command line on this host. Under TCG the guest reads the host's TSC at the host's rate
    /// (its frequency is passed in <see cref="GuestKernel.CommandLine"/>), but the guest's clocksource watchdog compares
    /// it with jiffies, which lose ticks whenever the host is busy, and marks it unstable; the guest then keeps time
    /// with jiffies: its clock fell 10-50 % behind the host at load 19 (measured 2026-11-28), and its tick can never
    /// stop (250 wakeups a second in an idle VM). <c>tsc=reliable</c> skips that watchdog: time follows the host's TSC
    /// and idle guests go tickless. Part of the boot-snapshot key, so a change retires older boot snapshots.
    /// </summary>
    public string GuestCommandLine => Accel.Accel == "tcg" ? Kernel.CommandLine + " tsc=reliable" : Kernel.CommandLine;
}
