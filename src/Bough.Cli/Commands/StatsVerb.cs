using System.CommandLine;
using System.Globalization;
using Bough.Client;

namespace Bough.Cli.Commands;

/// <summary><c>bough stats ID</c>: what a sandbox uses now (one sample, measured on the daemon's host).</summary>
internal static class StatsVerb
{
    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var json = new Option<bool>("--json") { Description = "Print the sample as JSON" };
        var command = new Command("stats", "Show a sandbox's CPU, memory and disk use") { id, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var stats = await client.GetSandboxStatsAsync(parse.GetValue(id)!, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(stats);
                return ExitCodes.Ok;
            }
            context.WriteFields(Fields(stats), (_, value) => value);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static List<(string Key, string Value)> Fields(SandboxStats s) =>
    [
        ("id", s.Id),
        ("state", s.State),
        ("cpu", s.CpuPercent is { } cpu ? $"{cpu.ToString("0.##", CultureInfo.InvariantCulture)}% of {s.Vcpus} vCPU" : "-"),
        ("memory", s.MemoryResidentBytes is { } rss ? $"{Bytes(rss)} resident of {Bytes(s.MemoryLimitBytes)}" : $"- of {Bytes(s.MemoryLimitBytes)}"),
        ("disk", Bytes(s.DiskUsedBytes)),
    ];

    private static string Bytes(long n) => n switch
    {
        >= 1L << 30 => (n / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (n / (double)(1L << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (n / (double)(1L << 10)).ToString("0.#", CultureInfo.InvariantCulture) + " KiB",
        _ => n.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
