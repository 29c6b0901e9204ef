using System.CommandLine;
using Bough.Client;

namespace Bough.Cli.Commands;

/// <summary><c>bough rm ID...</c>: deletes sandboxes, carrying on past failures.</summary>
internal static class RemoveVerb
{
    public static Command Build(CliContext context)
    {
        var ids = new Argument<string[]>("id") { Description = "Sandbox ids", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Stop and delete sandboxes") { ids };
        command.Aliases.Add("delete");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var exit = ExitCodes.Ok;
            foreach (var id in parse.GetValue(ids)!)
            {
                try
                {
                    await client.DeleteSandboxAsync(id, ct);
                    context.Terminal.Out.WriteLine(id);
                }
                catch (BoughApiException ex)
                {
                    // One bad id should not leave the rest running.
                    context.Terminal.Error(ex.Message);
                    exit = ExitCodes.Error;
                }
            }
            return exit;
        });
        return command;
    }
}
