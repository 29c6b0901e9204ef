using System.Globalization;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>How sandbox fields read in human output (shared by ls, show and tree).</summary>
internal static class SandboxFormat
{
    /// <summary>"8080->80", with the host address only when it is not the loopback default.</summary>
    public static string Ports(IReadOnlyList<PortMapping> ports) =>
        ports.Count == 0 ? "-" : string.Join(", ", ports.Select(p =>
            p.HostIp == "127.0.0.1" ? $"{p.HostPort}->{p.GuestPort}" : $"{p.HostIp}:{p.HostPort}->{p.GuestPort}"));

    public static string Memory(int mib) => mib % 1024 == 0 ? $"{mib / 1024} GiB" : $"{mib} MiB";

    public static string Created(DateTimeOffset t) =>
        t.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    /// <summary>Spectre colour for a state, so trouble stands out in a long list.</summary>
    public static string StateColor(string state) => state switch
    {
        SandboxStates.Running => "green",
        SandboxStates.Starting or SandboxStates.Stopping => "yellow",
        SandboxStates.Dead => "red",
        SandboxStates.Paused => "blue",
        _ => "default",
    };
}
