using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Bough.Client;

/// <summary>
/// The HTTP plumbing every call goes through: JSON in and out, error statuses read as problems,
/// transport failures mapped to <see cref="BoughApiException"/> codes, and the API's paths.
/// </summary>
public sealed partial class BoughClient
{
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
                $"unexpected response from {_where} (is that a Bough daemon?): {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !ct.IsCancellationRequested)
        {
            throw Lost(ex);
        }
    }

    /// <summary>Sends, mapping transport failures and error statuses to <see cref="BoughApiException"/>.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        if (_token?.Value is { } token && request.Headers.Authorization is null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
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
                    $"cannot reach the Bough daemon at {_where} — is `bough serve` running? ({ConnectFailure(ex)})", ex)
                : Lost(ex);
        }

        if (response.IsSuccessStatusCode)
            return response;
        using (response)
        {
            var failure = await ProblemReader.ReadAsync(response, _where, ct).ConfigureAwait(false);
            throw failure.Status == 401 && _token is not null ? Unauthorized(failure, _token) : failure;
        }
    }

    /// <summary>A 401 rewritten to say what this client sent and how to fix it.</summary>
    private BoughApiException Unauthorized(BoughApiException refused, BoughToken token)
    {
        var fix = $"`bough token` on the daemon's host prints the token: set ${BoughToken.Variable} to it, " +
                  "or run where the daemon's data directory is readable (--data-dir, $BOUGH_HOME)";
        var detail = token.Value is null
            ? $"the Bough daemon at {_where} requires an API token and none was found ({token.Source}); {fix}"
            : $"the Bough daemon at {_where} refused the API token from {token.Source} (it may have been rotated); {fix}";
        return new BoughApiException(refused.Status, refused.Code, refused.Title, detail, refused);
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

    /// <summary>Why a connection failed; for a Unix socket without the "(localhost:80)" the handler appends.</summary>
    private string ConnectFailure(HttpRequestException ex)
    {
        if (_socketPath is null)
            return ex.Message;
        return File.Exists(_socketPath) ? ex.InnerException?.Message ?? ex.Message : $"no socket at {_socketPath}";
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
