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
                WriteTable(context, snapshots);
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

    private static void WriteTable(CliContext context, List<Snapshot> snapshots)
    {
        var console = context.Terminal.Ansi;
        if (snapshots.Count == 0)
        {
            console.MarkupLine("[grey]no snapshots[/]");
            return;
        }
        // Ten columns of ids, sizes and a timestamp need ~130 columns. Squeezed into fewer, the
        // table would cut ids and sizes into fragments, so a narrow terminal gets the plain
        // lines instead and wraps them whole (as `ps` does).
        var rows = snapshots.Select(Row).ToList();
        if (TextTable.PlainWidth(Headers, rows) > console.Profile.Width)
        {
            TextTable.WritePlain(context.Terminal.Out, Headers, rows);
            return;
        }
        TextTable.Write(console, Headers, rows.Select(r => r.Select(Markup.Escape).ToArray()));
    }
}
