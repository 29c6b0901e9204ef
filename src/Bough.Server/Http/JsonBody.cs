using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Bough.Server.Http;

/// <summary>
/// Reads JSON request bodies ourselves rather than through minimal-API binding, because the
/// framework turns every JSON problem into the same vague "failed to read parameter" message;
/// API users need to know which field is wrong and why.
/// </summary>
internal static partial class JsonBody
{
    /// <summary>
    /// BoughJson with strict numbers: the web defaults also accept <c>"count":"3"</c>, which hides
    /// client bugs (and reads "3" and 3 as the same request in logs). A number is a JSON number.
    /// </summary>
    internal static JsonSerializerOptions Options { get; } = new(BoughJson.Options) { NumberHandling = JsonNumberHandling.Strict };

    /// <summary>Deserializes the body with <see cref="Options"/> or throws a 400 <see cref="BoughException"/>.</summary>
    /// <remarks>
    /// Routing already answers 415 for a wrong Content-Type where the endpoint declares
    /// <c>Accepts</c>; <see cref="RequireJsonContentType"/> checks again here so that no JSON
    /// endpoint can forget it (a cross-site form post is <c>text/plain</c>). Bodies are buffered
    /// (Kestrel's default 30 MB limit applies); they are small control messages.
    /// </remarks>
    public static async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class =>
        await ReadOptionalAsync<T>(request, ct)
        ?? throw new BoughException(ErrorCodes.InvalidJson, "a JSON object request body is required");

    /// <summary>As <see cref="ReadAsync{T}"/>, but an empty body (every field left out) is null rather than an error.</summary>
    public static async Task<T?> ReadOptionalAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        RequireJsonContentType(request);
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        if (buffer.Length == 0)
            return null;

        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Options);
        }
        catch (JsonException ex)
        {
            throw new BoughException(ErrorCodes.InvalidJson, Describe(ex), ex);
        }
        return value ?? throw new BoughException(ErrorCodes.InvalidJson, "the request body must be a JSON object, not null");
    }

    /// <summary>
    /// Refuses (415) a request that carries a body, or says it does, with a media type other
    /// than <c>application/json</c> (parameters such as <c>charset</c> allowed). A request
    /// without a body needs no Content-Type.
    /// </summary>
    /// <exception cref="BadHttpRequestException">Status 415; the error middleware makes it an <c>unsupported_media_type</c> problem.</exception>
    public static void RequireJsonContentType(HttpRequest request)
    {
        var contentType = request.ContentType;
        var hasBody = request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        if (string.IsNullOrEmpty(contentType))
        {
            if (hasBody)
                throw new BadHttpRequestException(
                    "this endpoint takes a JSON body: set 'Content-Type: application/json'", StatusCodes.Status415UnsupportedMediaType);
            return;
        }
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media)
            || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            throw new BadHttpRequestException(
                $"unsupported Content-Type '{contentType}': this endpoint takes 'application/json'", StatusCodes.Status415UnsupportedMediaType);
    }

    /// <summary>Rewrites System.Text.Json's messages (which name .NET types) in API terms.</summary>
    internal static string Describe(JsonException ex)
    {
        var path = string.IsNullOrEmpty(ex.Path) ? "$" : ex.Path;
        var message = StripPosition(ex.Message);

        if (UnmappedRegex().Match(message) is { Success: true } unmapped)
        {
            var name = unmapped.Groups["name"].Value;
            var field = path.EndsWith("." + name, StringComparison.Ordinal) || path.EndsWith($"['{name}']", StringComparison.Ordinal)
                ? path
                : (path == "$" ? $"$.{name}" : $"{path}.{name}");
            return $"unknown field '{name}' at {field}";
        }

        if (ConvertRegex().Match(message) is { Success: true } convert)
            return $"wrong type at {path}: expected {Friendly(convert.Groups["type"].Value)}";

        var where = ex.LineNumber is { } line && ex.BytePositionInLine is { } col
            ? $" (line {line + 1}, column {col + 1})"
            : "";
        return $"malformed JSON at {path}{where}: {message}";
    }

    private static string StripPosition(string message)
    {
        var i = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return (i >= 0 ? message[..i] : message).Trim();
    }

    private static string Friendly(string dotnetType)
    {
        var t = dotnetType;
        if (t.StartsWith("System.Nullable`1[", StringComparison.Ordinal))
            t = t["System.Nullable`1[".Length..].TrimEnd(']');
        return t switch
        {
            "System.Int32" or "System.Int64" or "System.UInt32" or "System.UInt64" or "System.Int16" => "an integer",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.String" => "a string",
            "System.Boolean" => "true or false",
            "System.DateTimeOffset" or "System.DateTime" => "an ISO 8601 timestamp string",
            _ when t.Contains("Dictionary", StringComparison.Ordinal) => "an object",
            _ when t.Contains("List`1", StringComparison.Ordinal) || t.EndsWith("[]", StringComparison.Ordinal) => "an array",
            _ when t.StartsWith("Bough.Contracts.", StringComparison.Ordinal) => "an object",
            _ => t[(t.LastIndexOf('.') + 1)..],
        };
    }

    [GeneratedRegex(@"The JSON property '(?<name>.*)' could not be mapped")]
    private static partial Regex UnmappedRegex();

    [GeneratedRegex(@"The JSON value could not be converted to (?<type>.+?)\.?$")]
    private static partial Regex ConvertRegex();
}
