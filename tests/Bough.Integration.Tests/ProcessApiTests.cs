using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// Background processes, terminals and the newer file operations through the HTTP API, the C#
/// client and the CLI, against the shared daemon's sandbox. The agent's own behaviour is covered
/// by Bough.Agent.Tests; these check the API surface: status codes, streams, the WebSocket.
/// </summary>
[Collection("daemon")]
public sealed class ProcessApiTests(DaemonFixture f)
{
    private string Id => f.Primary.Id;
    private BoughClient Client => f.Daemon.Client;

    private static async Task<(string Output, ProcessStreamEvent Exit)> CollectAsync(IAsyncEnumerable<ProcessStreamEvent> events)
    {
        var text = new StringBuilder();
        await foreach (var e in events)
        {
            if (e.Data is { } d) text.Append(Encoding.UTF8.GetString(Convert.FromBase64String(d)));
            if (e.Type == "exit") return (text.ToString(), e);
        }
        throw new InvalidOperationException("no exit");
    }

    [Fact]
    public async Task Background_process_takes_stdin_streams_output_and_replays_it_on_reconnect()
    {
        var p = await Client.StartProcessAsync(Id, new StartProcessRequest { Cmd = ["sh", "-c", "tr a-z A-Z; echo done >&2; exit 3"], Stdin = true, Tag = "upper" });
        Assert.True(p.Pid > 0);
        Assert.True(p.Running);
        Assert.Contains(await Client.ListProcessesAsync(Id), x => x.Pid == p.Pid && x.Tag == "upper");

        await Client.SendProcessInputAsync(Id, p.Pid, "hello "u8.ToArray());
        await Client.SendProcessInputAsync(Id, p.Pid, "world\n"u8.ToArray(), close: true);
        var (output, exit) = await CollectAsync(Client.StreamProcessOutputAsync(Id, p.Pid));
        // stdout and stderr are separate pipes: their relative order is not guaranteed.
        Assert.Equal(["HELLO WORLD", "done"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        Assert.Equal(3, exit.ExitCode);

        // A second attach replays what the guest kept; replay=false gives only the exit.
        Assert.Equal(output, (await CollectAsync(Client.StreamProcessOutputAsync(Id, p.Pid))).Output);
        Assert.Equal("", (await CollectAsync(Client.StreamProcessOutputAsync(Id, p.Pid, replay: false))).Output);
        var exited = await Client.GetProcessAsync(Id, p.Pid);
        Assert.False(exited.Running);
        Assert.Equal(3, exited.Exit!.ExitCode);
    }

    [Fact]
    public async Task Output_stream_sends_keepalives_while_idle_and_a_signal_ends_the_process()
    {
        var p = await Client.StartProcessAsync(Id, new StartProcessRequest { Cmd = ["sleep", "600"] });
        var types = new List<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var e in Client.StreamProcessOutputAsync(Id, p.Pid, keepalive: TimeSpan.FromMilliseconds(300), ct: cts.Token))
        {
            types.Add(e.Type);
            if (e.Type == "keepalive" && types.Count(t => t == "keepalive") == 2)
                await Client.SignalProcessAsync(Id, p.Pid, "SIGTERM", cts.Token);
            if (e.Type == "exit")
            {
                Assert.Equal(15, e.Signal);
                Assert.Equal(143, e.ExitCode);
                break;
            }
        }
        Assert.Equal("start", types[0]);
        Assert.Equal("exit", types[^1]);
        // Signalling an exited process: 404 process_not_found.
        var gone = await Assert.ThrowsAsync<BoughApiException>(() => Client.SignalProcessAsync(Id, p.Pid));
        Assert.Equal((404, ErrorCodes.ProcessNotFound), (gone.Status, gone.Code));
    }

    [Fact]
    public async Task Pty_over_the_websocket_echoes_input_resizes_and_reports_the_exit_code()
    {
        var p = await Client.StartProcessAsync(Id, new StartProcessRequest { Cmd = ["/bin/sh"], Pty = new TerminalSize(80, 24) });
        await using var a = await Client.AttachProcessAsync(Id, p.Pid);
        var seen = new StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        async Task<string> UntilAsync(string marker)
        {
            while (!seen.ToString().Contains(marker, StringComparison.Ordinal))
            {
                var frame = await a.ReceiveAsync(cts.Token) ?? throw new InvalidOperationException("closed; saw: " + seen);
                if (frame.Output is { } bytes) seen.Append(Encoding.UTF8.GetString(bytes));
                else if (frame.Event is { Type: "exit" } x) seen.Append($"<exit {x.ExitCode}>");
                else if (frame.Event is { Type: "start" } s) Assert.True(s.Pty);
            }
            return seen.ToString();
        }

        await a.SendInputAsync("echo typed-$((6*7))\n"u8.ToArray(), cts.Token);
        var text = await UntilAsync("typed-42");
        Assert.Contains("echo typed-$((6*7))", text); // the terminal echoed the input
        await a.ResizeAsync(100, 30, cts.Token);
        await a.SendInputAsync("stty size\n"u8.ToArray(), cts.Token);
        await UntilAsync("30 100");
        await a.SendInputAsync("exit 5\n"u8.ToArray(), cts.Token);
        await UntilAsync("<exit 5>");
    }

    [Fact]
    public async Task Stat_mkdir_move_watch_and_deep_listing()
    {
        var made = await Client.MakeDirectoryAsync(Id, "/tmp/fops/a/b");
        Assert.True(made.Created);
        Assert.False((await Client.MakeDirectoryAsync(Id, "/tmp/fops/a/b")).Created);
        await Client.UploadFileAsync(Id, "/tmp/fops/a/b/x.txt", new MemoryStream("12345"u8.ToArray()));
        var stat = await Client.StatFileAsync(Id, "/tmp/fops/a/b/x.txt");
        Assert.Equal(("file", 5L, "root"), (stat.Type, stat.Size, stat.Owner));
        Assert.StartsWith("-rw", stat.Permissions);

        var moved = await Client.MoveFileAsync(Id, "/tmp/fops/a/b/x.txt", "/tmp/fops/c/y.txt");
        Assert.Equal("/tmp/fops/c/y.txt", moved.Path);
        var deep = await Client.ListFilesAsync(Id, "/tmp/fops", depth: 3);
        Assert.Contains(deep, e => e.Path == "/tmp/fops/c/y.txt");
        Assert.Contains(deep, e => e.Path == "/tmp/fops/a/b" && e.Type == "dir");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new List<string>();
        await foreach (var e in Client.WatchDirectoryAsync(Id, "/tmp/fops", recursive: true, cts.Token))
        {
            if (e.Type == "start")
                await Client.UploadFileAsync(Id, "/tmp/fops/a/new.txt", new MemoryStream("x"u8.ToArray()), cts.Token);
            else if (e.Name is { } name)
                seen.Add($"{e.Type} {name}");
            if (seen.Contains("create a/new.txt")) break;
        }
        Assert.Contains("create a/new.txt", seen);
    }

    [Theory]
    [InlineData("GET", "/processes/0", null, 400, ErrorCodes.InvalidRequest)]
    [InlineData("GET", "/processes/999999", null, 404, ErrorCodes.ProcessNotFound)]
    [InlineData("POST", "/processes", """{"cmd":[]}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "/processes", """{"cmd":["true"],"pty":{"cols":0,"rows":24}}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "/processes", """{"cmd":["true"],"cwd":"relative"}""", 400, ErrorCodes.InvalidPath)]
    [InlineData("POST", "/processes/999999/signal", """{"signal":"SIGNOPE"}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "/processes/999999/signal", """{"signal":65}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "/processes/999999/signal", """{"signal":"TERM"}""", 404, ErrorCodes.ProcessNotFound)]
    [InlineData("POST", "/processes/999999/resize", """{"cols":5000,"rows":10}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("GET", "/files/stat?path=/no/such", null, 404, ErrorCodes.FileNotFound)]
    [InlineData("GET", "/files/stat?path=rel", null, 400, ErrorCodes.InvalidPath)]
    [InlineData("POST", "/files/move", """{"source":"/","destination":"/tmp/x"}""", 400, ErrorCodes.InvalidPath)]
    [InlineData("GET", "/files/list?path=/tmp&depth=65", null, 400, ErrorCodes.InvalidRequest)]
    [InlineData("GET", "/processes/1/attach", null, 400, ErrorCodes.InvalidRequest)]
    public async Task Bad_input_gets_a_problem_with_a_stable_code(string method, string path, string? json, int status, string code)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), $"/v1/sandboxes/{Id}{path}");
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var r = await f.Daemon.Http.SendAsync(request);
        Assert.Equal((HttpStatusCode)status, r.StatusCode);
        Assert.Equal(code, (await Problems.ReadAsync(r)).Code);
    }

    [Fact]
    public async Task Websocket_takes_the_token_as_a_subprotocol_and_refuses_without_it()
    {
        var p = await Client.StartProcessAsync(Id, new StartProcessRequest { Cmd = ["sh", "-c", "echo via-subprotocol"] });
        var url = new UriBuilder(new Uri(f.Daemon.Url, $"/v1/sandboxes/{Id}/processes/{p.Pid}/attach")) { Scheme = "ws" }.Uri;

        using var refused = new ClientWebSocket();
        refused.Options.AddSubProtocol("bough.v1");
        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(url, CancellationToken.None));

        using var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("bough.v1");
        ws.Options.AddSubProtocol("bough.token." + f.Daemon.Token);
        await ws.ConnectAsync(url, CancellationToken.None);
        Assert.Equal("bough.v1", ws.SubProtocol);
        var buffer = new byte[4096];
        var text = new StringBuilder();
        while (true)
        {
            var r = await ws.ReceiveAsync(buffer, CancellationToken.None);
            if (r.MessageType == WebSocketMessageType.Close) break;
            if (r.MessageType == WebSocketMessageType.Binary) text.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
        }
        Assert.Equal("via-subprotocol\n", text.ToString());
    }

    [Fact]
    public async Task Cli_exec_detach_ps_kill_and_shell()
    {
        var started = await BoughAsync(null, "exec", "--detach", Id, "--", "sleep", "300");
        Assert.Equal(0, started.Code);
        var pid = int.Parse(started.Out.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var ps = await BoughAsync(null, "ps", Id);
        Assert.Contains($"{pid} ", ps.Out);
        Assert.Contains("sleep 300", ps.Out);
        Assert.Equal(0, (await BoughAsync(null, "kill", Id, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--signal", "TERM")).Code);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(await Client.ListProcessesAsync(Id, includeExited: true)).Any(x => x.Pid == pid && x.Exit?.Signal == 15))
        {
            Assert.True(DateTime.UtcNow < deadline, "the killed process never showed as exited by SIGTERM");
            await Task.Delay(200);
        }

        // `bough shell` under script(1), so it has a real terminal to put in raw mode; the shell's exit code comes back.
        var shell = await RunUnderScriptAsync($"bough shell {Id} --cmd 'stty size; exit 7'");
        Assert.Equal(7, shell.Code);
        Assert.Contains("33 90", shell.Out); // the local window size reached the remote terminal
    }

    private async Task<(int Code, string Out)> RunUnderScriptAsync(string commandLine)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "bough.dll");
        var psi = new ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "-qefc", "stty cols 90 rows 33; " + commandLine.Replace("bough ", $"dotnet {dll} ", StringComparison.Ordinal), "/dev/null" })
            psi.ArgumentList.Add(a);
        Configure(psi);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (p.ExitCode, await o);
    }

    private void Configure(ProcessStartInfo psi)
    {
        psi.Environment["BOUGH_URL"] = f.Daemon.Url.ToString().TrimEnd('/');
        psi.Environment["BOUGH_TOKEN"] = f.Daemon.Token;
        psi.Environment["NO_COLOR"] = "1";
    }

    private async Task<(int Code, string Out, string Err)> BoughAsync(string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        Configure(psi);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }
}
