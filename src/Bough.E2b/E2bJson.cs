using System.Text.Json;
using System.Text.Json.Serialization;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Bough.E2b;

/// <summary>
/// JSON as E2B speaks it: the field names are spelled out on the wire types (E2B mixes camelCase,
/// <c>sandboxID</c> and snake_case), unknown fields are ignored (the SDK sends fields Bough has no
/// use for, such as <c>mcp</c> or <c>volumeMounts</c>), and nulls are left out.
/// </summary>
internal static class E2bJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads an optional JSON body (the SDK sends it chunked); empty means null. 415 for another media type, 400 for bad JSON.</summary>
    public static async Task<T?> ReadOptionalAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (!string.IsNullOrEmpty(request.ContentType)
            && (!MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
                || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)))
            throw new E2bException(415, $"unsupported Content-Type '{request.ContentType}': this endpoint takes application/json");
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        if (buffer.Length == 0)
            return null;
        if (string.IsNullOrEmpty(request.ContentType))
            throw new E2bException(415, "this endpoint takes a JSON body: set 'Content-Type: application/json'");
        try
        {
            return JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Options);
        }
        catch (JsonException ex)
        {
            throw new E2bException(400, $"malformed JSON at {ex.Path ?? "$"}: {ex.Message}", ex);
        }
    }

    /// <summary>Writes E2B's error shape <c>{"code":status,"message":...}</c>; the SDK reads <c>code</c> (kill: 404 means "already gone").</summary>
    public static Task WriteErrorAsync(HttpContext ctx, int status, string message)
    {
        var response = ctx.Response;
        response.Clear();
        response.StatusCode = status;
        response.Headers.CacheControl = "no-store";
        return response.WriteAsJsonAsync(new E2bError(status, message), Options, ctx.RequestAborted);
    }

    /// <summary>The HTTP status an engine failure becomes on the E2B surface.</summary>
    public static (int Status, string Message) Describe(Exception ex) => ex switch
    {
        E2bException e => (e.Status, e.Message),
        Envd.Connect.ConnectException c => (Envd.Connect.ConnectError.StatusForCode(c.Code), c.Message),
        BoughException b => (b.Status, b.Message),
        BadHttpRequestException b => (b.StatusCode, b.Message),
        _ => (500, "an unexpected error occurred; the daemon log has the details"),
    };
}

internal sealed record E2bError(
    [property: JsonPropertyName("code")] int Code,
    [property: JsonPropertyName("message")] string Message);
