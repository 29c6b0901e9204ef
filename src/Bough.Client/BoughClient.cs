using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
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

    private const string NdjsonMediaType = "application/x-ndjson";
    private const int CopyBufferSize = 128 * 1024;

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;

    /// <summary>Uses <paramref name="http"/> as is; its <see cref="HttpClient.BaseAddress"/> must point at the daemon.</summary>
    public BoughClient(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _base = WithTrailingSlash(http.BaseAddress
            ?? throw new ArgumentException("HttpClient.BaseAddress must be set to the daemon's URL", nameof(http)));
    }

    /// <summary>Creates and owns an <see cref="HttpClient"/> for <paramref name="baseUrl"/>.</summary>
    public BoughClient(Uri baseUrl)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        if (!baseUrl.IsAbsoluteUri)
            throw new ArgumentException("the daemon URL must be absolute, e.g. http://127.0.0.1:7878", nameof(baseUrl));
        _base = WithTrailingSlash(baseUrl);
        // No client-wide timeout: execs and transfers legitimately run for a long time. Callers
        // bound calls with their CancellationToken instead.
        _http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            BaseAddress = _base,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _ownsHttp = true;
    }

    /// <summary>The daemon's base URL, always ending in '/'.</summary>
    public Uri BaseUrl => _base;

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

    // ---- snapshots ----------------------------------------------------------------------

    /// <summary>Captures a running sandbox as a snapshot; the sandbox keeps running.</summary>
    public Task<Snapshot> CreateSnapshotAsync(string id, string? tag = null, CancellationToken ct = default) =>
        SendJsonAsync<Snapshot>(HttpMethod.Post, SandboxPath(id) + "/snapshots", new CreateSnapshotRequest { Tag = tag }, ct);

    /// <summary>Captures a running sandbox and starts children from the capture.</summary>
    public Task<BranchResult> BranchAsync(string id, BranchRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<BranchResult>(HttpMethod.Post, SandboxPath(id) + "/branch", request, ct);
    }

    public Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<Snapshot>>("v1/snapshots", ct);

    /// <summary>One snapshot by id or tag, with its ancestors, children and sandboxes filled in.</summary>
    public Task<Snapshot> GetSnapshotAsync(string idOrTag, CancellationToken ct = default) =>
        GetJsonAsync<Snapshot>(SnapshotPath(idOrTag), ct);

    /// <summary>
    /// Deletes a snapshot. Without <paramref name="cascade"/> this fails (409 snapshot_in_use)
    /// while child snapshots or sandboxes depend on it; with it, they are deleted too.
    /// </summary>
    public async Task DeleteSnapshotAsync(string idOrTag, bool cascade = false, CancellationToken ct = default)
    {
        var path = SnapshotPath(idOrTag) + (cascade ? "?cascade=true" : "");
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(path));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>Writes a standalone copy of a snapshot (no ancestors) and returns the copy.</summary>
    public Task<Snapshot> CompactSnapshotAsync(string idOrTag, string? tag = null, CancellationToken ct = default) =>
        SendJsonAsync<Snapshot>(HttpMethod.Post, SnapshotPath(idOrTag) + "/compact", new CreateSnapshotRequest { Tag = tag }, ct);

    /// <summary>The lineage forest: snapshots with their child snapshots and the sandboxes started from them.</summary>
    public Task<LineageTree> GetTreeAsync(CancellationToken ct = default) =>
        GetJsonAsync<LineageTree>("v1/tree", ct);

    // ---- exec ---------------------------------------------------------------------------

    /// <summary>Runs a command and returns its buffered output once it exits.</summary>
    public Task<ExecResult> ExecAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<ExecResult>(HttpMethod.Post, SandboxPath(id) + "/exec", request, ct);
    }

    /// <summary>Shorthand for <see cref="ExecAsync(string, ExecRequest, CancellationToken)"/> with just argv.</summary>
    public Task<ExecResult> ExecAsync(string id, IEnumerable<string> cmd, CancellationToken ct = default) =>
        ExecAsync(id, new ExecRequest { Cmd = cmd.ToList() }, ct);

    /// <summary>
    /// Runs a command and yields its output as it is produced: <c>stdout</c>/<c>stderr</c> events
    /// (base64 <see cref="ExecEvent.Data"/>) and finally one <c>exit</c> event, after which the
    /// sequence ends. An <c>error</c> line from the daemon is thrown as
    /// <see cref="BoughApiException"/> (Status 0), as is a stream that ends without an exit.
    /// Cancelling (or abandoning the enumeration) closes the connection, which makes the daemon
    /// kill the command.
    /// </summary>
    public async IAsyncEnumerable<ExecEvent> ExecStreamAsync(
        string id, ExecRequest request, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var message = new HttpRequestMessage(HttpMethod.Post, Url(SandboxPath(id) + "/exec"))
        {
            Content = JsonContent.Create(request, options: ClientJson.Write),
        };
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(NdjsonMediaType));

        using var response = await SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.Content.Headers.ContentType?.MediaType is { } mediaType
            && !mediaType.Equals(NdjsonMediaType, StringComparison.OrdinalIgnoreCase))
            throw new BoughApiException((int)response.StatusCode, BoughApiException.InvalidResponse, null,
                $"expected an {NdjsonMediaType} stream from {_base}, got {mediaType}");

        var body = await ReadBodyStreamAsync(response, ct).ConfigureAwait(false);
        await using var _ = body.ConfigureAwait(false);
        using var reader = new StreamReader(body, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, CopyBufferSize);
        while (true)
        {
            var line = await ReadLineAsync(reader, ct).ConfigureAwait(false);
            if (line is null)
                throw new BoughApiException(0, BoughApiException.ConnectionLost, null,
                    "the exec stream ended without an exit status (did the daemon stop?)");
            if (line.Length == 0)
                continue;

            var e = ParseEvent(line);
            if (e.Type == "error")
                throw new BoughApiException(0, e.Code ?? ErrorCodes.Internal, null, e.Message ?? "the command failed");
            yield return e;
            if (e.Type == "exit")
                yield break;
        }
    }

    private static async Task<string?> ReadLineAsync(StreamReader reader, CancellationToken ct)
    {
        try
        {
            return await reader.ReadLineAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
        {
            throw Lost(ex);
        }
    }

    private ExecEvent ParseEvent(string line)
    {
        try
        {
            return JsonSerializer.Deserialize<ExecEvent>(line, ClientJson.Read)
                ?? throw new JsonException("null event");
        }
        catch (JsonException ex)
        {
            throw new BoughApiException(0, BoughApiException.InvalidResponse, null,
                $"unreadable exec event from {_base}: {ex.Message}", ex);
        }
    }

    // ---- files --------------------------------------------------------------------------

    /// <summary>
    /// Streams <paramref name="content"/> to <paramref name="guestPath"/> (absolute), creating parent
    /// directories. The stream is read to its end but not disposed.
    /// </summary>
    public async Task UploadFileAsync(string id, string guestPath, Stream content, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        // The request is deliberately not disposed: that would dispose StreamContent and with it
        // the caller's stream, which the caller owns.
        var request = new HttpRequestMessage(HttpMethod.Put, Url(FilesPath(id, "files", guestPath)))
        {
            Content = new StreamContent(content, CopyBufferSize),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>Streams a guest file into <paramref name="destination"/>; returns the number of bytes written.</summary>
    public async Task<long> DownloadFileAsync(string id, string guestPath, Stream destination, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(FilesPath(id, "files", guestPath)));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        var copied = await CopyBodyAsync(response, destination, ct).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength is { } expected && expected != copied)
            throw new BoughApiException(0, BoughApiException.ConnectionLost, null,
                $"download of {guestPath} stopped after {copied} of {expected} bytes");
        return copied;
    }

    public async Task DeleteFileAsync(string id, string guestPath, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(FilesPath(id, "files", guestPath)));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string guestPath, CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<FileEntry>>(FilesPath(id, "files/list", guestPath), ct);

    // ---- logs ---------------------------------------------------------------------------

    /// <summary>The whole console log as text.</summary>
    public async Task<string> GetLogsAsync(string id, CancellationToken ct = default)
    {
        using var buffer = new MemoryStream();
        await CopyLogsAsync(id, buffer, 0, ct).ConfigureAwait(false);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>
    /// Copies the console log from byte <paramref name="offset"/> on into <paramref name="destination"/>
    /// and returns the number of bytes copied; polling with a growing offset is how
    /// <c>bough logs --follow</c> tails the log.
    /// </summary>
    public async Task<long> CopyLogsAsync(string id, Stream destination, long offset = 0, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var path = SandboxPath(id) + "/logs" + (offset > 0 ? $"?offset={offset}" : "");
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(path));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        return await CopyBodyAsync(response, destination, ct).ConfigureAwait(false);
    }

    // ---- plumbing -----------------------------------------------------------------------

    private async Task<T> GetJsonAsync<T>(string path, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(path));
        return await SendForJsonAsync<T>(request, ct).ConfigureAwait(false);
    }

    private async Task<T> PostForJsonAsync<T>(string path, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Url(path));
        return await SendForJsonAsync<T>(request, ct).ConfigureAwait(false);
    }

    private async Task<T> SendJsonAsync<T>(HttpMethod method, string path, object body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, Url(path))
        {
            Content = JsonContent.Create(body, body.GetType(), options: ClientJson.Write),
        };
        return await SendForJsonAsync<T>(request, ct).ConfigureAwait(false);
    }

    private async Task<T> SendForJsonAsync<T>(HttpRequestMessage request, CancellationToken ct)
    {
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(ClientJson.Read, ct).ConfigureAwait(false)
                ?? throw new JsonException("the response body was null");
        }
        catch (JsonException ex)
        {
            throw new BoughApiException((int)response.StatusCode, BoughApiException.InvalidResponse, null,
                $"unexpected response from {_base} (is that a Bough daemon?): {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
        {
            throw Lost(ex);
        }
    }

    /// <summary>Sends, mapping transport failures and error statuses to <see cref="BoughApiException"/>.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (!ct.IsCancellationRequested)
        {
            throw ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
                or HttpRequestError.SecureConnectionError
                ? new BoughApiException(0, BoughApiException.Unreachable, null,
                    $"cannot reach the Bough daemon at {_base} — is `bough serve` running? ({ex.Message})", ex)
                : Lost(ex);
        }

        if (response.IsSuccessStatusCode)
            return response;
        using (response)
            throw await ProblemReader.ReadAsync(response, _base, ct).ConfigureAwait(false);
    }

    private static async Task<Stream> ReadBodyStreamAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            return await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
        {
            throw Lost(ex);
        }
    }

    /// <summary>
    /// Copies a response body, attributing read failures to the connection and leaving write
    /// failures (disk full, closed pipe) as the IOExceptions they are.
    /// </summary>
    private static async Task<long> CopyBodyAsync(HttpResponseMessage response, Stream destination, CancellationToken ct)
    {
        var body = await ReadBodyStreamAsync(response, ct).ConfigureAwait(false);
        await using var _ = body.ConfigureAwait(false);
        var buffer = new byte[CopyBufferSize];
        long total = 0;
        while (true)
        {
            int n;
            try
            {
                n = await body.ReadAsync(buffer, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
            {
                throw Lost(ex);
            }
            if (n == 0)
                return total;
            await destination.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            total += n;
        }
    }

    private static BoughApiException Lost(Exception ex) =>
        new(0, BoughApiException.ConnectionLost, null, $"the connection to the Bough daemon failed: {ex.Message}", ex);

    private Uri Url(string relative) => new(_base, relative);

    private static string SandboxPath(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return "v1/sandboxes/" + Uri.EscapeDataString(id);
    }

    private static string SnapshotPath(string idOrTag)
    {
        ArgumentException.ThrowIfNullOrEmpty(idOrTag);
        return "v1/snapshots/" + Uri.EscapeDataString(idOrTag);
    }

    private static string FilesPath(string id, string endpoint, string guestPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(guestPath);
        return $"{SandboxPath(id)}/{endpoint}?path={Uri.EscapeDataString(guestPath)}";
    }

    private static Uri WithTrailingSlash(Uri uri) =>
        uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
}
