using System.CommandLine;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary><c>bough pause ID</c> and <c>bough resume ID [--timeout S]</c>: print the id once done.</summary>
internal static class PauseResumeVerbs
{
    public static Command BuildPause(CliContext context) =>
        Build(context, "pause", "Save a sandbox to disk and stop its VM (resume continues it)", null, (c, id, _, ct) => c.PauseAsync(id, ct));

    public static Command BuildResume(CliContext context)
    {
        var policy = new PolicyOptions();
        return Build(context, "resume", "Continue a paused sandbox where it stopped (a new lifetime starts)", policy,
            (c, id, parse, ct) => c.ResumeAsync(id,
                new ResumeRequest { TimeoutSeconds = policy.TimeoutSeconds(parse), OnTimeout = policy.OnTimeoutAction(parse) }, ct));
    }

    private static Command Build(CliContext context, string name, string description, PolicyOptions? policy,
        Func<BoughClient, string, ParseResult, CancellationToken, Task<Sandbox>> call)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON instead of its id" };
        var command = new Command(name, description) { id, json };
        foreach (var o in policy?.Lifetime ?? []) command.Options.Add(o);
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandbox = await call(client, parse.GetValue(id)!, parse, ct);
            if (parse.GetValue(json))
                context.WriteJson(sandbox);
            else
                context.Terminal.Out.WriteLine(sandbox.Id);
            return ExitCodes.Ok;
        });
        return command;
    }
}
