using System.CommandLine;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary><c>bough ls</c>: one line per sandbox.</summary>
internal static class ListVerb
{
    private static readonly string[] Headers = ["ID", "STATE", "IMAGE", "VCPUS", "MEMORY", "PORTS", "CREATED"];

    public static Command Build(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print the list as JSON" };
        var command = new Command("ls", "List sandboxes") { json };
        command.Aliases.Add("list");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandboxes = (await client.ListSandboxesAsync(ct)).OrderBy(s => s.CreatedAt).ToList();
            if (parse.GetValue(json))
                context.WriteJson(sandboxes);
            else if (context.Terminal.StdoutIsTerminal)
                WriteTable(context.Terminal.Ansi, sandboxes);
            else
                WritePlain(context.Terminal.Out, sandboxes);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string[] Row(Sandbox s) =>
    [
        s.Id, s.State, s.Image, s.Vcpus.ToString(), SandboxFormat.Memory(s.MemoryMiB),
        SandboxFormat.Ports(s.Ports), SandboxFormat.Created(s.CreatedAt),
    ];

    private static void WriteTable(IAnsiConsole console, List<Sandbox> sandboxes)
    {
        if (sandboxes.Count == 0)
        {
            console.MarkupLine("[grey]no sandboxes[/]");
            return;
        }
        // Fits 80 columns; only PORTS may wrap.
        TextTable.Write(console, Headers, sandboxes.Select(s =>
        {
            var cells = Row(s).Select(Markup.Escape).ToArray();
            cells[1] = $"[{SandboxFormat.StateColor(s.State)}]{cells[1]}[/]";
            return cells;
        }), "PORTS");
    }

    private static void WritePlain(TextWriter output, IReadOnlyList<Sandbox> sandboxes) =>
        TextTable.WritePlain(output, Headers, sandboxes.Select(Row));
}
