using System.Diagnostics;
using System.Globalization;

namespace Bough.Network.Tests;

/// <summary>
/// A TCP connection a process running as a VM uid opens at once and uses only when a file
/// appears: to see what a policy change does to connections already open.
/// </summary>
internal sealed class HeldConnection : IAsyncDisposable
{
    private const string Client = """
        import os, socket, sys, time
        host, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        s = socket.create_connection((host, port), 3)
        print("connected", flush=True)
        while not os.path.exists(go):
            time.sleep(0.01)
        try:
            s.settimeout(1.5)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(data.split(b"\r\n\r\n", 1)[1].decode())
        except OSError as e:
            print("failed: %r" % (e,), file=sys.stderr)
            sys.exit(1)
        """;

    private readonly Process _process;

    private HeldConnection(Process process) => _process = process;

    public static HeldConnection Open(int uid, string host, int port, string goFile)
    {
        var u = uid.ToString(CultureInfo.InvariantCulture);
        var psi = new ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var a in new[] { $"--reuid={u}", $"--regid={u}", "--clear-groups", HostCommand.Python3, "-c", Client, host, port.ToString(CultureInfo.InvariantCulture), goFile })
            psi.ArgumentList.Add(a);
        return new HeldConnection(Process.Start(psi)!);
    }

    public async Task ConnectedAsync()
    {
        var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        if (line != "connected")
            Assert.Fail($"the held connection did not open: {await _process.StandardError.ReadToEndAsync()}");
    }

    /// <summary>The response body once the file appeared, or null when the connection failed.</summary>
    public async Task<string?> ResultAsync()
    {
        var rest = await _process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync();
        return _process.ExitCode == 0 ? rest.Trim() : null;
    }

    /// <summary>Ends the client if a failing test left it waiting.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
