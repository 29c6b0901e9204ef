using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
    private const string EventStreamMediaType = "text/event-stream";

    /// <summary>
    /// Follows the daemon's event stream (<c>GET /v1/events</c>): first <see cref="EventTypes.Ready"/> (list what you
    /// show after it, not before), then every sandbox and snapshot change as it is committed. On
    /// <see cref="EventTypes.Resync"/> events were dropped because this reader was too slow: list again. The sequence
    /// ends when the daemon closes the stream (it stops); cancel <paramref name="ct"/> (or stop enumerating) to leave.
    /// </summary>
    public IAsyncEnumerable<BoughEvent> EventsAsync(CancellationToken ct = default) => EventsAsync(types: null, ct);

    /// <inheritdoc cref="EventsAsync(CancellationToken)"/>
    /// <param name="types">Categories (<c>sandbox</c>, <c>snapshot</c>) or exact types to receive; null for all.</param>
    /// <param name="ct">Ends the subscription.</param>
    public async IAsyncEnumerable<BoughEvent> EventsAsync(IEnumerable<string>? types, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var path = "v1/events";
        if (types?.ToList() is { Count: > 0 } list) path += "?types=" + Uri.EscapeDataString(string.Join(',', list));
        using var message = new HttpRequestMessage(HttpMethod.Get, Url(path));
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(EventStreamMediaType));
        using var response = await SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.Content.Headers.ContentType?.MediaType is not EventStreamMediaType)
            throw new BoughApiException(0, ErrorCodes.Internal, null,
                $"the daemon at {_where} answered /v1/events with {response.Content.Headers.ContentType?.MediaType ?? "no content type"}, not an event stream");
        using var reader = new StreamReader(await ReadBodyStreamAsync(response, ct).ConfigureAwait(false), Encoding.UTF8);
        var data = new StringBuilder();
        while (await ReadLineAsync(reader, ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                // A blank line ends an event; only its data (the JSON) matters, which repeats its id and type.
                if (data.Length > 0) yield return ParseServerEvent(data.ToString());
                data.Clear();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                if (data.Length > 0) data.Append('\n');
                data.Append(line.AsSpan(line.StartsWith("data: ", StringComparison.Ordinal) ? 6 : 5));
            }
            // Comments (": keepalive"), id: and event: lines carry nothing the JSON does not.
        }
    }

    private BoughEvent ParseServerEvent(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<BoughEvent>(json, ClientJson.Read)
                   ?? throw new JsonException("null event");
        }
        catch (JsonException ex)
        {
            throw new BoughApiException(0, ErrorCodes.Internal, null, $"the daemon at {_where} sent an event that is not valid JSON: {ex.Message}", ex);
        }
    }
}
