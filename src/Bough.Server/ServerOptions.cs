namespace Bough.Server;

/// <summary>How the HTTP front end is exposed.</summary>
public sealed class ServerOptions
{
    /// <summary>
    /// Kestrel listen URL(s), separated by ';'. Loopback by default because the API has no
    /// authentication: anyone who can reach it can run code in every sandbox. Use port 0 to
    /// let the OS choose (tests); the bound address is then in <c>app.Urls</c> after start.
    /// <c>http://unix:/path/to.sock</c> listens on a Unix socket.
    /// </summary>
    public string Listen { get; set; } = "http://127.0.0.1:7878";
}
