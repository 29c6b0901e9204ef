using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Client;

/// <summary>Turns a non-success response into a <see cref="BoughApiException"/>.</summary>
internal static class ProblemReader
{
    /// <summary>Enough for any problem document; a huge HTML error page is cut short.</summary>
    private const int MaxBodyChars = 8 * 1024;

    public static async Task<BoughApiException> ReadAsync(HttpResponseMessage response, string daemon, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            body = "";
        }
        if (body.Length > MaxBodyChars)
            body = body[..MaxBodyChars];

        if (IsJson(response.Content.Headers.ContentType) && TryParse(body) is { } problem)
        {
            var code = string.IsNullOrEmpty(problem.Code) ? CodeForStatus(status) : problem.Code;
            var detail = problem.Detail ?? problem.Title ?? Describe(response);
            return new BoughApiException(status, code, problem.Title, detail) { RetryAfter = RetryAfter(response) };
        }

        // Not a Bough problem: most likely a proxy or some other service on that port. Say so,
        // rather than pretending to know what went wrong.
        var text = body.Trim();
        var summary = text.Length is > 0 and <= 200 && !text.StartsWith('<') ? $": {text}" : "";
        return new BoughApiException(status, CodeForStatus(status), response.ReasonPhrase,
            $"{Describe(response)} from {daemon}{summary}") { RetryAfter = RetryAfter(response) };
    }

    /// <summary>Retry-After as a delay: delay-seconds as is, an HTTP date relative to now (never negative).</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date > DateTimeOffset.UtcNow ? date - DateTimeOffset.UtcNow : TimeSpan.Zero,
        _ => null,
    };

    private static string Describe(HttpResponseMessage response) =>
        $"HTTP {(int)response.StatusCode} {response.ReasonPhrase ?? response.StatusCode.ToString()}";

    private static bool IsJson(MediaTypeHeaderValue? contentType) =>
        contentType?.MediaType is { } m
        && (m.Equals("application/problem+json", StringComparison.OrdinalIgnoreCase)
            || m.Equals("application/json", StringComparison.OrdinalIgnoreCase));

    private static Problem? TryParse(string body)
    {
        try
        {
            var problem = JsonSerializer.Deserialize<Problem>(body, ClientJson.Read);
            return problem is { Status: > 0 } or { Code: not null } ? problem : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    internal static string CodeForStatus(int status) => status switch
    {
        (int)HttpStatusCode.Unauthorized => BoughApiException.Unauthorized,
        (int)HttpStatusCode.NotFound => ErrorCodes.NotFound,
        (int)HttpStatusCode.Conflict => ErrorCodes.Conflict,
        (int)HttpStatusCode.RequestEntityTooLarge => ErrorCodes.PayloadTooLarge,
        (int)HttpStatusCode.ServiceUnavailable => ErrorCodes.AgentUnavailable,
        >= 400 and < 500 => ErrorCodes.InvalidRequest,
        _ => ErrorCodes.Internal,
    };
}
