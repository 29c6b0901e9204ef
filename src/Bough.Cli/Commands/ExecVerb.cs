using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough exec ID -- CMD ARGS...</c>: runs a command in a sandbox with its output streamed
/// live, byte for byte, to our stdout/stderr, and exits with the command's status. Without a
/// command it runs the image's entrypoint and cmd.
/// </summary>
internal static class ExecVerb
{
    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var argv = new Argument<string[]>("command")
        {
            Description = "Command and its arguments; put them after -- so their options are not taken for bough's. "
                + "None: the image's entrypoint + cmd",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var env = new Option<string[]>("--env", "-e") { Description = "Extra environment variable (repeatable)", HelpName = "KEY=VALUE" };
        var cwd = new Option<string?>("--cwd", "-w") { Description = "Working directory in the guest", HelpName = "DIR" };
        var timeout = NumericOptions.Number("--timeout", "Kill the command after this many seconds (exit code 124)", "SECONDS");
        var stdin = new Option<bool>("--stdin", "-i") { Description = "Send this process's standard input to the command" };
        var user = new Option<string?>("--user", "-u")
        {
            Description = "Run as this user: a name from the guest's /etc/passwd, or UID[:GID] (default: the image's user, else root)",
            HelpName = "USER",
        };

        var detach = new Option<bool>("--detach", "-d")
        {
            Description = "Start the command in the background and print its pid (see `bough ps`, `bough attach`, `bough kill`)",
        };

        var command = new Command("exec", "Run a command in a sandbox; exits with its exit code (128+N if killed by signal N, 124 on timeout)")
        {
            id, argv, env, cwd, timeout, stdin, user, detach,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            if (parse.GetValue(detach))
            {
                var detached = parse.GetValue(argv) is { Length: > 0 } given ? given : throw new UsageException("--detach needs a command (after --)");
                return await ProcessVerbs.StartDetachedAsync(client, context.Terminal, parse.GetValue(id)!, new StartProcessRequest
                {
                    Cmd = [.. detached],
                    User = parse.GetValue(user),
                    Env = KeyValues.Parse("--env", parse.GetValue(env)),
                    Cwd = parse.GetValue(cwd),
                    TimeoutSeconds = parse.GetOptional(timeout),
                    Stdin = parse.GetValue(stdin),
                }, ct);
            }
            var request = new ExecRequest
            {
                // Absent (not []) asks the daemon for the image's default command.
                Cmd = parse.GetValue(argv) is { Length: > 0 } words ? [.. words] : null,
                User = parse.GetValue(user),
                Env = KeyValues.Parse("--env", parse.GetValue(env)),
                Cwd = parse.GetValue(cwd),
                TimeoutSeconds = parse.GetOptional(timeout),
                // The API takes stdin whole, up front; reading it all first is the price.
                Stdin = parse.GetValue(stdin) ? await ReadStdinBase64Async(ct) : null,
            };
            return await RunAsync(client, parse.GetValue(id)!, request, ct);
        });
        return command;
    }

    private static async Task<int> RunAsync(Client.BoughClient client, string id, ExecRequest request, CancellationToken ct)
    {
        await using var stdout = Terminal.OpenStdout();
        await using var stderr = Terminal.OpenStderr();
        await foreach (var e in client.ExecStreamAsync(id, request, ct))
        {
            switch (e.Type)
            {
                case "stdout" or "stderr" when e.Data is { Length: > 0 } data:
                    var target = e.Type == "stdout" ? stdout : stderr;
                    try
                    {
                        await target.WriteAsync(Convert.FromBase64String(data), ct);
                        await target.FlushAsync(ct);
                    }
                    catch (IOException)
                    {
                        // Our reader went away (e.g. `| head`). Leaving the loop closes the
                        // stream, which makes the daemon kill the command, as SIGPIPE would.
                        return ExitCodes.BrokenPipe;
                    }
                    break;
                case "exit":
                    return ExitCodeOf(e);
            }
        }
        // ExecStreamAsync ends with an exit event or throws; this is unreachable in practice.
        return ExitCodes.Error;
    }

    /// <summary>The shell's conventions, so `bough exec` composes in scripts like the command itself.</summary>
    internal static int ExitCodeOf(ExecEvent exit)
    {
        if (exit.TimedOut == true)
            return ExitCodes.TimedOut;
        if (exit.Signal is > 0 and var signal)
            return ExitCodes.SignalBase + signal;
        return (exit.ExitCode ?? ExitCodes.Error) & 0xFF;
    }

    private static async Task<string> ReadStdinBase64Async(CancellationToken ct)
    {
        await using var input = Terminal.OpenStdin();
        using var buffer = new MemoryStream();
        await input.CopyToAsync(buffer, ct);
        return Convert.ToBase64String(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
