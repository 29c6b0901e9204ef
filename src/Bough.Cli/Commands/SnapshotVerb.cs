using System.CommandLine;

namespace Bough.Cli.Commands;

/// <summary><c>bough snapshot ID</c>: captures a running sandbox; prints the snapshot id.</summary>
internal static class SnapshotVerb
{
    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var tag = new Option<string?>("--tag") { Description = "Name for the snapshot (default: generated)", HelpName = "TAG" };
        var json = new Option<bool>("--json") { Description = "Print the snapshot as JSON instead of its id" };
        var command = new Command("snapshot", "Capture a running sandbox (it keeps running); prints the snapshot id") { id, tag, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var snapshot = await client.CreateSnapshotAsync(parse.GetValue(id)!, parse.GetValue(tag), ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(snapshot);
                return ExitCodes.Ok;
            }
            context.Terminal.Out.WriteLine(snapshot.Id);
            // Stdout stays the bare id for $(...); a human also gets the tag and the pause.
            if (context.Terminal.StderrIsTerminal)
                context.Terminal.Err.WriteLine(SnapshotFormat.Captured(snapshot, snapshot.PauseMs));
            return ExitCodes.Ok;
        });
        return command;
    }
}
