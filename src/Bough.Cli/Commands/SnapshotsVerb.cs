using System.CommandLine;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary><c>bough snapshots</c>: one line per snapshot.</summary>
internal static class SnapshotsVerb
{
    private static readonly string[] Headers =
        ["ID", "TAG", "PARENT", "SOURCE", "DEPTH", "KIND", "MEMORY", "DISK", "PAUSE", "CREATED"];

    public static Command Build(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print the list as JSON" };
        var command = new Command("snapshots", "List snapshots") { json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var snapshots = (await client.ListSnapshotsAsync(ct)).OrderBy(s => s.CreatedAt).ToList();
            if (parse.GetValue(json))
                context.WriteJson(snapshots);
            else if (context.Terminal.StdoutIsTerminal)
                WriteTable(context.Terminal.Ansi, snapshots);
            else
                TextTable.WritePlain(context.Terminal.Out, Headers, snapshots.Select(Row));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string[] Row(Snapshot s) =>
    [
        s.Id, Dash(s.Tag), Dash(s.ParentId), Dash(s.SourceSandboxId), s.Depth.ToString(), s.Kind,
        SnapshotFormat.Bytes(s.MemoryBytes), SnapshotFormat.Bytes(s.DiskBytes), SnapshotFormat.PauseMs(s.PauseMs),
        SandboxFormat.Created(s.CreatedAt),
    ];

    private static string Dash(string? value) => string.IsNullOrEmpty(value) ? "-" : value;

    private static void WriteTable(IAnsiConsole console, IReadOnlyList<Snapshot> snapshots)
    {
        if (snapshots.Count == 0)
        {
            console.MarkupLine("[grey]no snapshots[/]");
            return;
        }
        // Tags are free-form and can be long; they wrap rather than push ids off the screen.
        TextTable.Write(console, Headers, snapshots.Select(s => Row(s).Select(Markup.Escape).ToArray()), "TAG");
    }
}
