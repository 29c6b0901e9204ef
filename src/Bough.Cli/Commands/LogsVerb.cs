using System.CommandLine;

namespace Bough.Cli.Commands;

/// <summary><c>bough logs ID</c>: the sandbox's serial console.</summary>
internal static class LogsVerb
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new output until interrupted" };
        var command = new Command("logs", "Print a sandbox's console log") { id, follow };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandboxId = parse.GetValue(id)!;
            await using var stdout = Terminal.OpenStdout();
            var offset = await client.CopyLogsAsync(sandboxId, stdout, 0, ct);
            await stdout.FlushAsync(ct);
            if (!parse.GetValue(follow))
                return ExitCodes.Ok;

            // Polling with a byte offset: simple, survives daemon restarts, and costs one small
            // request a second. Ends with Ctrl+C (exit 130, as tail -f).
            while (true)
            {
                await Task.Delay(PollInterval, ct);
                offset += await client.CopyLogsAsync(sandboxId, stdout, offset, ct);
                await stdout.FlushAsync(ct);
            }
        });
        return command;
    }
}
