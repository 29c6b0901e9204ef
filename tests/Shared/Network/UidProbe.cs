using System.Globalization;

namespace Bough.TestSupport;

/// <summary>
/// Connects to an HTTP server as a given uid, the way a sandbox VM's QEMU opens its sockets:
/// python3 under <c>setpriv</c> with that uid, its own gid and no supplementary groups. Answers
/// the response body, or null when the connection failed (refused by a firewall, nothing
/// listening, timed out).
/// </summary>
public static class UidProbe
{
    private const string Client = """
        import socket, sys
        host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect((host, port))
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

    /// <summary>
    /// GETs <c>http://HOST:PORT/</c> as <paramref name="uid"/> (null: as this process, root).
    /// A firewall refusal fails within milliseconds; <paramref name="timeout"/> bounds the rest.
    /// </summary>
    public static async Task<string?> GetAsync(int? uid, string host, int port, double timeout = 3)
    {
        var inv = CultureInfo.InvariantCulture;
        string[] python = [HostCommand.Python3, "-c", Client, host, port.ToString(inv), timeout.ToString(inv)];
        var (file, args) = uid is { } u
            ? ("setpriv", (string[])[$"--reuid={u.ToString(inv)}", $"--regid={u.ToString(inv)}", "--clear-groups", .. python])
            : (python[0], python[1..]);
        var (code, stdout, _) = await HostCommand.RunAsync(file, args, timeout: TimeSpan.FromSeconds(timeout + 10));
        return code == 0 ? stdout.Trim() : null;
    }
}
