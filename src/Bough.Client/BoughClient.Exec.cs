using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
    private const string NdjsonMediaType = "application/x-ndjson";

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
                $"expected an {NdjsonMediaType} stream from {_where}, got {mediaType}");

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
                $"unreadable exec event from {_where}: {ex.Message}", ex);
        }
    }
}
