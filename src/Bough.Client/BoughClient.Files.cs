using System.Net.Http.Headers;
using System.Text;
using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
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
}
