using System.CommandLine;
using Bough.Client;

namespace Bough.Cli.Commands;

/// <summary><c>bough rm-snapshot ID_OR_TAG...</c>: deletes snapshots, carrying on past failures.</summary>
internal static class RemoveSnapshotVerb
{
    public static Command Build(CliContext context)
    {
        var ids = new Argument<string[]>("id-or-tag") { Description = "Snapshot ids or tags", Arity = ArgumentArity.OneOrMore };
        var cascade = new Option<bool>("--cascade") { Description = "Also delete descendant snapshots (sandboxes started from them must be removed first)" };
        var command = new Command("rm-snapshot", "Delete snapshots") { ids, cascade };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var exit = ExitCodes.Ok;
            foreach (var id in parse.GetValue(ids)!)
            {
                try
                {
                    await client.DeleteSnapshotAsync(id, parse.GetValue(cascade), ct);
                    context.Terminal.Out.WriteLine(id);
                }
                catch (BoughApiException ex)
                {
                    context.Terminal.Error(CliContext.Describe(ex));
                    exit = ExitCodes.Error;
                }
            }
            return exit;
        });
        return command;
    }
}
