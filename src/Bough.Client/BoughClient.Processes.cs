using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Client;

/// <summary>Background processes, terminals, and file stat/mkdir/move/watch.</summary>
public sealed partial class BoughClient
{
    /// <summary>Starts a background process (on a terminal when <see cref="StartProcessRequest.Pty"/> is set).</summary>
    public Task<GuestProcess> StartProcessAsync(string id, StartProcessRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<GuestProcess>(HttpMethod.Post, SandboxPath(id) + "/processes", request, ct);
    }

    /// <summary>Running processes; with <paramref name="includeExited"/> also the few exited ones the guest remembers.</summary>
    public Task<IReadOnlyList<GuestProcess>> ListProcessesAsync(string id, bool includeExited = false, CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<GuestProcess>>(SandboxPath(id) + "/processes" + (includeExited ? "?all=true" : ""), ct);

    public Task<GuestProcess> GetProcessAsync(string id, int pid, CancellationToken ct = default) =>
        GetJsonAsync<GuestProcess>(ProcessPath(id, pid), ct);

    /// <summary>
    /// The process's output: <c>start</c>, buffered output (unless <paramref name="replay"/> is false),
    /// live output, <c>keepalive</c>s, then <c>exit</c>, after which the sequence ends. An <c>error</c>
    /// line is thrown as <see cref="BoughApiException"/>. Stopping only detaches.
    /// </summary>
    public async IAsyncEnumerable<ProcessStreamEvent> StreamProcessOutputAsync(string id, int pid, bool replay = true,
        TimeSpan? keepalive = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var query = new List<string>();
        if (!replay) query.Add("replay=false");
        if (keepalive is { } k) query.Add("keepaliveSeconds=" + k.TotalSeconds.ToString(CultureInfo.InvariantCulture));
        var path = ProcessPath(id, pid) + "/output" + (query.Count > 0 ? "?" + string.Join('&', query) : "");
        await foreach (var e in NdjsonAsync<ProcessStreamEvent>(path, ct).ConfigureAwait(false))
        {
            if (e.Type == "error")
                throw new BoughApiException(0, e.Code ?? ErrorCodes.Internal, null, e.Message ?? "the process stream failed");
            yield return e;
            if (e.Type == "exit")
                yield break;
        }
    }

    /// <summary>Writes <paramref name="input"/> (read to its end, not disposed) to the process's stdin; <paramref name="close"/> closes stdin afterwards.</summary>
    public async Task SendProcessInputAsync(string id, int pid, Stream input, bool close = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        var request = new HttpRequestMessage(HttpMethod.Post, Url(ProcessPath(id, pid) + "/stdin" + (close ? "?close=true" : "")))
        {
            Content = new StreamContent(input, CopyBufferSize),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    public Task SendProcessInputAsync(string id, int pid, ReadOnlyMemory<byte> input, bool close = false, CancellationToken ct = default) =>
        SendProcessInputAsync(id, pid, new MemoryStream(input.ToArray(), writable: false), close, ct);

    /// <summary>Sends a signal (a number, or a name such as <c>SIGTERM</c>; null: SIGKILL) to the process group.</summary>
    public async Task SignalProcessAsync(string id, int pid, string? signal = null, CancellationToken ct = default)
    {
        var body = new SignalProcessRequest
        {
            Signal = signal is null ? null
                : int.TryParse(signal, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? JsonSerializer.SerializeToElement(n)
                : JsonSerializer.SerializeToElement(signal),
        };
        await SendNoContentAsync(ProcessPath(id, pid) + "/signal", body, ct).ConfigureAwait(false);
    }

    public async Task ResizeProcessAsync(string id, int pid, int cols, int rows, CancellationToken ct = default) =>
        await SendNoContentAsync(ProcessPath(id, pid) + "/resize", new ResizeProcessRequest { Cols = cols, Rows = rows }, ct).ConfigureAwait(false);

    /// <summary>
    /// Opens the attach WebSocket (<see cref="ProcessAttachment"/>): output down, input and control up.
    /// Works over TCP and the daemon's Unix socket alike (it rides this client's HTTP handler).
    /// </summary>
    public async Task<ProcessAttachment> AttachProcessAsync(string id, int pid, bool replay = true, CancellationToken ct = default)
    {
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.AddSubProtocol("bough.v1");
            if (_token?.Value is { } token)
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
            var url = new UriBuilder(Url(ProcessPath(id, pid) + "/attach" + (replay ? "" : "?replay=false")));
            url.Scheme = url.Scheme == Uri.UriSchemeHttps ? "wss" : "ws";
            socket.Options.CollectHttpResponseDetails = true;
            await socket.ConnectAsync(url.Uri, _http, ct).ConfigureAwait(false);
            return new ProcessAttachment(socket);
        }
        catch (WebSocketException ex) when (socket.HttpStatusCode is { } status && (int)status >= 400)
        {
            socket.Dispose();
            throw new BoughApiException((int)status, status == System.Net.HttpStatusCode.NotFound ? ErrorCodes.NotFound : ErrorCodes.Internal, null,
                $"the daemon refused the attach ({(int)status}); GET .../processes/{pid} says why", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // ---- files ----------------------------------------------------------------------------

    public Task<FileEntry> StatFileAsync(string id, string guestPath, CancellationToken ct = default) =>
        GetJsonAsync<FileEntry>(FilesPath(id, "files/stat", guestPath), ct);

    /// <summary>mkdir -p; the result says whether it was created or already existed.</summary>
    public Task<MkdirResult> MakeDirectoryAsync(string id, string guestPath, CancellationToken ct = default) =>
        SendJsonAsync<MkdirResult>(HttpMethod.Post, SandboxPath(id) + "/files/mkdir", new MkdirRequest { Path = guestPath }, ct);

    public Task<FileEntry> MoveFileAsync(string id, string source, string destination, CancellationToken ct = default) =>
        SendJsonAsync<FileEntry>(HttpMethod.Post, SandboxPath(id) + "/files/move", new MoveFileRequest { Source = source, Destination = destination }, ct);

    /// <summary>Lists down to <paramref name="depth"/> levels; entries carry their absolute <see cref="FileEntry.Path"/>.</summary>
    public Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string guestPath, int depth, CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<FileEntry>>(FilesPath(id, "files/list", guestPath) + "&depth=" + depth.ToString(CultureInfo.InvariantCulture), ct);

    /// <summary>Watches a directory: <c>start</c>, then changes and keepalives until cancelled, or <c>end</c> when the directory goes away.</summary>
    public async IAsyncEnumerable<FileWatchEvent> WatchDirectoryAsync(string id, string guestPath, bool recursive = false,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var path = FilesPath(id, "files/watch", guestPath) + (recursive ? "&recursive=true" : "");
        await foreach (var e in NdjsonAsync<FileWatchEvent>(path, ct).ConfigureAwait(false))
        {
            if (e.Type == "error")
                throw new BoughApiException(0, e.Code ?? ErrorCodes.Internal, null, e.Message ?? "the watch failed");
            yield return e;
            if (e.Type == "end")
                yield break;
        }
    }

    private async Task SendNoContentAsync(string path, object body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Url(path))
        {
            Content = JsonContent.Create(body, body.GetType(), options: ClientJson.Write),
        };
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    private static string ProcessPath(string id, int pid) => SandboxPath(id) + "/processes/" + pid.ToString(CultureInfo.InvariantCulture);

    /// <summary>GET an NDJSON stream and yield its lines until the server ends it.</summary>
    private async IAsyncEnumerable<T> NdjsonAsync<T>(string path, [EnumeratorCancellation] CancellationToken ct)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, Url(path));
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(NdjsonMediaType));
        using var response = await SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        var body = await ReadBodyStreamAsync(response, ct).ConfigureAwait(false);
        await using var _ = body.ConfigureAwait(false);
        using var reader = new StreamReader(body, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, CopyBufferSize);
        while (await ReadLineAsync(reader, ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0) continue;
            T? item;
            try { item = JsonSerializer.Deserialize<T>(line, ClientJson.Read); }
            catch (JsonException ex)
            {
                throw new BoughApiException(0, BoughApiException.InvalidResponse, null, $"unreadable stream line from {_where}: {ex.Message}", ex);
            }
            if (item is not null) yield return item;
        }
        throw new BoughApiException(0, BoughApiException.ConnectionLost, null, "the stream ended early (did the daemon stop?)");
    }
}
