using System.CommandLine;
using System.Runtime.InteropServices;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough shell ID</c>: an interactive terminal in a sandbox, like <c>docker exec -it</c>. The
/// command runs on a guest pseudo-terminal (a background process, attached over the WebSocket);
/// the local terminal goes raw so every key reaches it, window changes are passed on, and the
/// exit status is the remote one. Without a local terminal (piped input) it still works, with
/// an 80x24 terminal and the input sent as typed.
/// </summary>
internal static class ShellVerb
{
    /// <summary>bash as a login shell where the image has it, else sh.</summary>
    private const string DefaultShell = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var cmd = new Option<string?>("--cmd", "-c") { Description = "Command line to run instead of a login shell (by /bin/sh -c)", HelpName = "COMMAND" };
        var user = new Option<string?>("--user", "-u") { Description = "Run as this user (name or UID[:GID])", HelpName = "USER" };
        var cwd = new Option<string?>("--cwd", "-w") { Description = "Working directory in the guest", HelpName = "DIR" };
        var command = new Command("shell", "Open an interactive terminal in a sandbox (exits with the remote exit code)") { id, cmd, user, cwd };
        context.SetAction(command, (parse, client, ct) => RunAsync(client, parse.GetValue(id)!, parse.GetValue(cmd) ?? DefaultShell,
            parse.GetValue(user), parse.GetValue(cwd), ct));
        return command;
    }

    private static async Task<int> RunAsync(BoughClient client, string id, string commandLine, string? user, string? cwd, CancellationToken ct)
    {
        var size = Console.IsInputRedirected ? null : RawTerminal.Size();
        var process = await client.StartProcessAsync(id, new StartProcessRequest
        {
            Cmd = ["/bin/sh", "-c", commandLine],
            User = user,
            Cwd = cwd,
            Env = new Dictionary<string, string> { ["TERM"] = Environment.GetEnvironmentVariable("TERM") is { Length: > 0 } t ? t : "xterm-256color" },
            Pty = new TerminalSize(size?.Cols ?? 80, size?.Rows ?? 24),
        }, ct);

        var exited = false;
        try
        {
            await using var attachment = await client.AttachProcessAsync(id, process.Pid, replay: true, ct);
            using var raw = Console.IsInputRedirected ? null : RawTerminal.Enter();
            using var winch = raw is null ? null : OnWindowChange(() =>
            {
                if (RawTerminal.Size() is { } s)
                    _ = attachment.ResizeAsync(s.Cols, s.Rows, ct).ContinueWith(static _ => { }, TaskScheduler.Default);
            });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var input = Task.Run(() => PumpInputAsync(attachment, stop.Token), CancellationToken.None);
            await using var stdout = Terminal.OpenStdout();
            await using var stderr = Terminal.OpenStderr();
            try
            {
                while (await attachment.ReceiveAsync(ct) is { } frame)
                {
                    if (frame.Output is { } bytes)
                    {
                        await stdout.WriteAsync(bytes, ct);
                        await stdout.FlushAsync(ct);
                    }
                    else if (frame.Event is { Type: "stderr", Data: { } data })
                        await stderr.WriteAsync(Convert.FromBase64String(data), ct);
                    else if (frame.Event is { Type: "exit" } exit)
                    {
                        exited = true;
                        return ProcessVerbs.ExitCodeOf(exit);
                    }
                    else if (frame.Event is { Type: "error" } error)
                        throw new BoughApiException(0, error.Code ?? ErrorCodes.Internal, null, error.Message ?? "the terminal failed");
                }
                throw new BoughApiException(0, BoughApiException.ConnectionLost, null, "the terminal connection closed before the shell exited");
            }
            finally
            {
                await stop.CancelAsync();
            }
        }
        finally
        {
            // A terminal whose client is gone would wait forever for input: end it, as closing a terminal hangs up.
            if (!exited)
            {
                try { await client.SignalProcessAsync(id, process.Pid, "HUP", CancellationToken.None); }
                catch (BoughApiException) { /* already gone */ }
            }
        }
    }

    /// <summary>SIGWINCH: the local window changed size (there is no such signal on Windows).</summary>
    private static PosixSignalRegistration? OnWindowChange(Action changed)
    {
        if (OperatingSystem.IsWindows())
            return null;
        return PosixSignalRegistration.Create(PosixSignal.SIGWINCH, c =>
        {
            c.Cancel = true;
            changed();
        });
    }

    /// <summary>Our stdin to the remote terminal, chunk by chunk as it arrives (raw mode: key by key).</summary>
    private static async Task PumpInputAsync(ProcessAttachment attachment, CancellationToken ct)
    {
        await using var stdin = Terminal.OpenStdin();
        var buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await stdin.ReadAsync(buffer, ct)) > 0)
                await attachment.SendInputAsync(buffer.AsMemory(0, n), ct);
        }
        catch (Exception ex) when (ex is OperationCanceledException or System.Net.WebSockets.WebSocketException or IOException)
        {
            // The session ended (or the connection did); the output side reports why.
        }
    }
}
