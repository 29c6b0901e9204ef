using Bough.Contracts;

namespace Bough.Client;

/// <summary>
/// Typed client for the Bough daemon's REST API. Every failure surfaces as
/// <see cref="BoughApiException"/> (cancellation excepted), so callers have one thing to catch.
/// </summary>
/// <remarks>Thread-safe; meant to be long-lived, like the <see cref="HttpClient"/> under it.</remarks>
public sealed partial class BoughClient : IDisposable
{
    public const string DefaultUrl = "http://127.0.0.1:7878";

    /// <summary>Chunk size for streamed bodies (exec lines, file and log transfers).</summary>
    private const int CopyBufferSize = 128 * 1024;

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;

    /// <summary>The daemon as the caller named it (a unix: address stays one), for messages.</summary>
    private readonly string _where;

    /// <summary>The Unix socket the owned HttpClient connects to, if any (for a clearer "cannot reach").</summary>
    private readonly string? _socketPath;

    /// <summary>Sent on every request that carries no Authorization of its own; null: the caller manages auth.</summary>
    private readonly BoughToken? _token;

    /// <summary>
    /// Uses <paramref name="http"/> as is; its <see cref="HttpClient.BaseAddress"/> must point at
    /// the daemon, and authentication is the caller's (e.g. a default Authorization header).
    /// </summary>
    public BoughClient(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _base = WithTrailingSlash(http.BaseAddress
            ?? throw new ArgumentException("HttpClient.BaseAddress must be set to the daemon's URL", nameof(http)));
        _where = _base.ToString();
    }

    /// <summary>Uses <paramref name="http"/> (for TLS trust or proxies of your own) and sends <paramref name="token"/>.</summary>
    public BoughClient(HttpClient http, string token) : this(http)
    {
        _token = BoughToken.Of(token);
    }

    /// <summary>
    /// Creates and owns an <see cref="HttpClient"/> for <paramref name="baseUrl"/> (http, https
    /// or <c>unix:/path</c>) and finds the API token itself (<see cref="BoughToken.Find(string?)"/>).
    /// </summary>
    public BoughClient(Uri baseUrl) : this(baseUrl, BoughToken.Find())
    {
    }

    /// <summary>As <see cref="BoughClient(Uri)"/> with an explicit token.</summary>
    public BoughClient(Uri baseUrl, string token) : this(baseUrl, BoughToken.Of(token))
    {
    }

    /// <summary>As <see cref="BoughClient(Uri)"/> with a token found or made by the caller.</summary>
    public BoughClient(Uri baseUrl, BoughToken token)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        ArgumentNullException.ThrowIfNull(token);
        if (!baseUrl.IsAbsoluteUri)
            throw new ArgumentException("the daemon URL must be absolute, e.g. http://127.0.0.1:7878", nameof(baseUrl));
        _token = token;
        _where = baseUrl.ToString();
        // No client-wide timeout: execs and transfers legitimately run for a long time. Callers
        // bound calls with their CancellationToken instead.
        SocketsHttpHandler handler;
        if (DaemonAddress.IsUnixSocket(baseUrl))
        {
            // HTTP over the socket; the name in the URL only fills the Host header.
            _socketPath = DaemonAddress.SocketPath(baseUrl);
            handler = DaemonAddress.UnixSocketHandler(_socketPath);
            _base = new Uri("http://localhost/");
        }
        else
        {
            handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) };
            _base = WithTrailingSlash(baseUrl);
        }
        _http = new HttpClient(handler) { BaseAddress = _base, Timeout = Timeout.InfiniteTimeSpan };
        _ownsHttp = true;
    }

    /// <summary>A client for <c>$BOUGH_URL</c> (else <see cref="DefaultUrl"/>) with the token <see cref="BoughToken.Find(string?)"/> finds.</summary>
    public static BoughClient FromEnvironment(string? dataDir = null) => new(DaemonAddress.Resolve(), BoughToken.Find(dataDir));

    /// <summary>The daemon's base URL, always ending in '/' (<c>http://localhost/</c> for a Unix socket).</summary>
    public Uri BaseUrl => _base;

    /// <summary>True when this client reaches the daemon over a Unix socket (<see cref="BaseUrl"/> is then a placeholder).</summary>
    public bool IsUnixSocket => _socketPath is not null;

    public void Dispose()
    {
        if (_ownsHttp)
            _http.Dispose();
    }

    // ---- system -------------------------------------------------------------------------

    public Task<HealthStatus> HealthAsync(CancellationToken ct = default) =>
        GetJsonAsync<HealthStatus>("healthz", ct);

    public Task<VersionInfo> GetVersionAsync(CancellationToken ct = default) =>
        GetJsonAsync<VersionInfo>("v1/version", ct);

    // ---- sandboxes ----------------------------------------------------------------------

    /// <summary>
    /// Boots a sandbox from <see cref="CreateSandboxRequest.Image"/>, starts one from
    /// <see cref="CreateSandboxRequest.Snapshot"/>, or forks <see cref="CreateSandboxRequest.Template"/>'s
    /// snapshot. For several at once use <see cref="CreateSandboxesFromSnapshotAsync"/> or
    /// <see cref="CreateSandboxesFromTemplateAsync"/>; a request with <see cref="CreateSandboxRequest.Count"/> is refused here.
    /// </summary>
    public Task<Sandbox> CreateSandboxAsync(CreateSandboxRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Count is not null)
            throw new ArgumentException(
                $"a request with Count answers with a list; use {nameof(CreateSandboxesFromSnapshotAsync)}", nameof(request));
        return SendJsonAsync<Sandbox>(HttpMethod.Post, "v1/sandboxes", request, ct);
    }

    /// <summary>
    /// Starts <paramref name="count"/> sandboxes from <paramref name="snapshot"/> (id or tag) in one
    /// call. <paramref name="extra"/> supplies the other fields (env, metadata, ...); its own
    /// Snapshot and Count are replaced.
    /// </summary>
    public Task<IReadOnlyList<Sandbox>> CreateSandboxesFromSnapshotAsync(
        string snapshot, int count, CreateSandboxRequest? extra = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(snapshot);
        // The range (1..100) is the daemon's to enforce and report.
        var request = (extra ?? new CreateSandboxRequest()) with { Snapshot = snapshot, Count = count };
        return SendJsonAsync<IReadOnlyList<Sandbox>>(HttpMethod.Post, "v1/sandboxes", request, ct);
    }

    /// <summary>
    /// Starts <paramref name="count"/> sandboxes forked from <paramref name="template"/>'s snapshot in
    /// one call. <paramref name="extra"/> supplies env and metadata; its own Template and Count are replaced.
    /// </summary>
    public Task<IReadOnlyList<Sandbox>> CreateSandboxesFromTemplateAsync(
        string template, int count, CreateSandboxRequest? extra = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(template);
        var request = (extra ?? new CreateSandboxRequest()) with { Template = template, Count = count };
        return SendJsonAsync<IReadOnlyList<Sandbox>>(HttpMethod.Post, "v1/sandboxes", request, ct);
    }

    public Task<IReadOnlyList<Sandbox>> ListSandboxesAsync(CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<Sandbox>>("v1/sandboxes", ct);

    public Task<Sandbox> GetSandboxAsync(string id, CancellationToken ct = default) =>
        GetJsonAsync<Sandbox>(SandboxPath(id), ct);

    public async Task DeleteSandboxAsync(string id, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(SandboxPath(id)));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>Saves the sandbox to disk and stops its VM; answers the sandbox, now paused.</summary>
    public Task<Sandbox> PauseAsync(string id, CancellationToken ct = default) =>
        PostForJsonAsync<Sandbox>(SandboxPath(id) + "/pause", ct);

    /// <summary>Continues a paused sandbox where it stopped.</summary>
    public Task<Sandbox> ResumeAsync(string id, CancellationToken ct = default) =>
        PostForJsonAsync<Sandbox>(SandboxPath(id) + "/resume", ct);
}
