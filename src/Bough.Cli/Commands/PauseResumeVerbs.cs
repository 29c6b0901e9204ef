using System.CommandLine;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary><c>bough pause ID</c> and <c>bough resume ID</c>: print the id once done.</summary>
internal static class PauseResumeVerbs
{
    public static Command BuildPause(CliContext context) =>
        Build(context, "pause", "Save a sandbox to disk and stop its VM (resume continues it)", (c, id, ct) => c.PauseAsync(id, ct));

    public static Command BuildResume(CliContext context) =>
        Build(context, "resume", "Continue a paused sandbox where it stopped", (c, id, ct) => c.ResumeAsync(id, ct));

    private static Command Build(
        CliContext context, string name, string description, Func<BoughClient, string, CancellationToken, Task<Sandbox>> call)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON instead of its id" };
        var command = new Command(name, description) { id, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandbox = await call(client, parse.GetValue(id)!, ct);
            if (parse.GetValue(json))
                context.WriteJson(sandbox);
            else
                context.Terminal.Out.WriteLine(sandbox.Id);
            return ExitCodes.Ok;
        });
        return command;
    }
}
