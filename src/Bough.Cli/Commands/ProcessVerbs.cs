using System.CommandLine;
using System.Globalization;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// Background processes: <c>bough exec --detach</c> starts one (<see cref="StartDetachedAsync"/>),
/// <c>bough ps</c> lists them, <c>bough attach</c> streams one's output, <c>bough kill</c> signals it.
/// </summary>
internal static class ProcessVerbs
{
    /// <summary>Starts a background process, feeds it our stdin when asked, and prints its pid (alone, for scripts).</summary>
    public static async Task<int> StartDetachedAsync(BoughClient client, Terminal terminal, string id, StartProcessRequest request, CancellationToken ct)
    {
        var process = await client.StartProcessAsync(id, request, ct);
        if (request.Stdin == true)
        {
            await using var input = Terminal.OpenStdin();
            await client.SendProcessInputAsync(id, process.Pid, input, close: true, ct);
        }
        terminal.Out.WriteLine(process.Pid.ToString(CultureInfo.InvariantCulture));
        return ExitCodes.Ok;
    }

    public static Command BuildPs(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var all = new Option<bool>("--all", "-a") { Description = "Also the recently exited processes the guest remembers" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("ps", "List a sandbox's background processes") { id, all, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var list = await client.ListProcessesAsync(parse.GetValue(id)!, parse.GetValue(all), ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(list);
                return ExitCodes.Ok;
            }
            string[] headers = ["PID", "TAG", "STATUS", "STARTED", "COMMAND"];
            var rows = list.Select(p => new[]
            {
                p.Pid.ToString(CultureInfo.InvariantCulture), p.Tag ?? "",
                p.Exit is { } x ? $"exited ({x.ExitCode})" : p.Pty is { } t ? $"running (pty {t.Cols}x{t.Rows})" : "running",
                p.StartedAt.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                ShellWords.Join(p.Cmd),
            }).ToList();
            TextTable.WritePlain(context.Terminal.Out, headers, rows);
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command BuildAttach(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var pid = new Argument<int>("pid") { Description = "Process id (from `bough exec --detach` or `bough ps`)" };
        var noReplay = new Option<bool>("--no-replay") { Description = "Only output from now on, not what the guest still buffers" };
        var command = new Command("attach", "Stream a background process's output until it exits (Ctrl-C detaches; the process runs on). "
            + "When stdin is not a terminal it is sent to the process, then closed")
        {
            id, pid, noReplay,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandbox = parse.GetValue(id)!;
            var processId = parse.GetValue(pid);
            var input = Console.IsInputRedirected
                ? Task.Run(async () =>
                {
                    await using var stdin = Terminal.OpenStdin();
                    await client.SendProcessInputAsync(sandbox, processId, stdin, close: true, ct);
                }, ct)
                : Task.CompletedTask;
            await using var stdout = Terminal.OpenStdout();
            await using var stderr = Terminal.OpenStderr();
            await foreach (var e in client.StreamProcessOutputAsync(sandbox, processId, !parse.GetValue(noReplay), ct: ct))
            {
                if (e.Data is { Length: > 0 } data)
                {
                    var target = e.Type == "stderr" ? stderr : stdout;
                    await target.WriteAsync(Convert.FromBase64String(data), ct);
                    await target.FlushAsync(ct);
                }
                else if (e.Type == "exit")
                {
                    await input.ContinueWith(static _ => { }, TaskScheduler.Default);
                    return ExitCodeOf(e);
                }
            }
            return ExitCodes.Error;
        });
        return command;
    }

    public static Command BuildKill(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var pid = new Argument<int>("pid") { Description = "Process id" };
        var signal = new Option<string?>("--signal", "-s") { Description = "Signal name or number (default KILL)", HelpName = "SIGNAL" };
        var command = new Command("kill", "Send a signal to a background process's group (default SIGKILL)") { id, pid, signal };
        context.SetAction(command, async (parse, client, ct) =>
        {
            await client.SignalProcessAsync(parse.GetValue(id)!, parse.GetValue(pid), parse.GetValue(signal), ct);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>As <see cref="ExecVerb.ExitCodeOf"/>: 124 on timeout, 128+N for signal N, else the status.</summary>
    internal static int ExitCodeOf(ProcessStreamEvent exit)
    {
        if (exit.TimedOut == true)
            return ExitCodes.TimedOut;
        if (exit.Signal is > 0 and var signal)
            return ExitCodes.SignalBase + signal;
        return (exit.ExitCode ?? ExitCodes.Error) & 0xFF;
    }
}
