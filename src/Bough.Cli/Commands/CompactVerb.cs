using System.CommandLine;

namespace Bough.Cli.Commands;

/// <summary><c>bough compact ID_OR_TAG</c>: writes a standalone copy of a snapshot; prints the new id.</summary>
internal static class CompactVerb
{
    public static Command Build(CliContext context)
    {
        var idOrTag = new Argument<string>("id-or-tag") { Description = "Snapshot id or tag" };
        var tag = new Option<string?>("--tag") { Description = "Name for the copy (default: generated)", HelpName = "TAG" };
        var json = new Option<bool>("--json") { Description = "Print the new snapshot as JSON instead of its id" };
        var command = new Command("compact", "Copy a snapshot into a standalone one (no ancestors); prints the new id") { idOrTag, tag, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var snapshot = await client.CompactSnapshotAsync(parse.GetValue(idOrTag)!, parse.GetValue(tag), ct);
            if (parse.GetValue(json))
                context.WriteJson(snapshot);
            else
                context.Terminal.Out.WriteLine(snapshot.Id);
            return ExitCodes.Ok;
        });
        return command;
    }
}
