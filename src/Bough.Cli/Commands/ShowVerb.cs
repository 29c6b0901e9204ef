using System.CommandLine;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary><c>bough show ID</c>: everything the daemon knows about one sandbox.</summary>
internal static class ShowVerb
{
    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON" };
        var command = new Command("show", "Show a sandbox's details") { id, json };
        command.Aliases.Add("inspect");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandbox = await client.GetSandboxAsync(parse.GetValue(id)!, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(sandbox);
                return ExitCodes.Ok;
            }

            context.WriteFields(Fields(sandbox),
                (key, value) => key == "state" ? $"[{SandboxFormat.StateColor(sandbox.State)}]{value}[/]" : value);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static List<(string Key, string Value)> Fields(Sandbox s)
    {
        var fields = new List<(string, string)>
        {
            ("id", s.Id),
            ("state", s.StateReason is { Length: > 0 } reason ? $"{s.State} ({reason})" : s.State),
            ("image", s.Image),
        };
        if (s.SnapshotId is { Length: > 0 } snapshot)
            fields.Add(("snapshot", snapshot));
        fields.AddRange(
        [
            ("vcpus", s.Vcpus.ToString()),
            ("memory", SandboxFormat.Memory(s.MemoryMiB)),
            ("internet", s.Internet ? "yes" : "no"),
            ("ports", SandboxFormat.Ports(s.Ports)),
            ("accel", s.Accel),
            ("created", SandboxFormat.Created(s.CreatedAt)),
        ]);
        if (s.Pid is { } pid)
            fields.Add(("pid", pid.ToString()));
        fields.Add(("metadata", s.Metadata.Count == 0 ? "-" : string.Join(", ", s.Metadata.Select(kv => $"{kv.Key}={kv.Value}"))));
        return fields;
    }
}
