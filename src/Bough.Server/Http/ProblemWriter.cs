using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Bough.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;

namespace Bough.Server.Http;

/// <summary>
/// Writes RFC 9457 problem responses in Bough's shape (<see cref="Problem"/>). Every error the
/// API produces goes through here so clients only ever have to parse one error format.
/// </summary>
internal static class ProblemWriter
{
    public const string ContentType = "application/problem+json";

    /// <summary>Codes for failures only the HTTP layer can produce (not in the engine's vocabulary).</summary>
    public const string MethodNotAllowedCode = "method_not_allowed";

    /// <summary>502: port routing reached the sandbox, but nothing in it accepted on the port.</summary>
    public const string PortUnreachableCode = "port_unreachable";

    /// <summary>401: no API token, or not the daemon's.</summary>
    public const string UnauthorizedCode = ErrorCodes.Unauthorized;

    /// <summary>415: a JSON endpoint got a body of another media type.</summary>
    public const string UnsupportedMediaTypeCode = ErrorCodes.UnsupportedMediaType;

    /// <summary>421: a loopback listener got a request for a name that is not loopback (DNS rebinding).</summary>
    public const string HostNotAllowedCode = ErrorCodes.HostNotAllowed;

    /// <summary>
    /// BoughJson plus relaxed escaping: details quote user input ('name', paths) and
    /// \u0027-style escapes make them needlessly hard to read in a terminal. Safe because
    /// problem bodies are never embedded in HTML.
    /// </summary>
    private static readonly JsonSerializerOptions Json = new(BoughJson.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Writes a problem, discarding anything a handler may have set on the response before it
    /// failed (headers, status). Caller guarantees the response has not started.
    /// </summary>
    public static Task WriteAsync(
        HttpContext ctx, int status, string code, string detail, string? allow = null, TimeSpan? retryAfter = null,
        string? authenticate = null)
    {
        var response = ctx.Response;
        response.Clear();
        response.StatusCode = status;
        if (!string.IsNullOrEmpty(allow))
            response.Headers.Allow = allow; // RFC 9110 requires it on a 405
        if (!string.IsNullOrEmpty(authenticate))
            response.Headers.WWWAuthenticate = authenticate; // and WWW-Authenticate on a 401
        if (retryAfter is { } wait)
            response.Headers.RetryAfter = RetryAfterSeconds(wait).ToString(CultureInfo.InvariantCulture);
        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-store";
        var problem = new Problem
        {
            // A per-code URN: the code *is* the problem type, and RFC 9457 reserves about:blank
            // for problems that mean no more than their status code.
            Type = $"urn:bough:error:{code}",
            Title = TitleFor(code, status),
            Status = status,
            Detail = detail,
            Code = code,
            Instance = ctx.Request.Path.HasValue ? ctx.Request.Path.Value : null,
        };
        return JsonSerializer.SerializeAsync(response.Body, problem, Json, CancellationToken.None);
    }

    /// <summary>
    /// Retry-After in the delay-seconds form: whole seconds, rounded up so a client that waits
    /// exactly that long is not early, and at least 1 (0 would invite a tight retry loop).
    /// </summary>
    internal static long RetryAfterSeconds(TimeSpan wait)
    {
        if (wait <= TimeSpan.Zero)
            return 1;
        // Ceiling without overflow: TimeSpan.MaxValue is ~9.2e11 seconds, well inside a long.
        var seconds = wait.Ticks / TimeSpan.TicksPerSecond + (wait.Ticks % TimeSpan.TicksPerSecond == 0 ? 0 : 1);
        return Math.Max(1, seconds);
    }

    /// <summary>
    /// Turns a body-less error status set by the framework (no route: 404, wrong method: 405,
    /// ...) into a problem.
    /// </summary>
    public static Task WriteForBareStatusAsync(HttpContext ctx)
    {
        var status = ctx.Response.StatusCode;
        var method = ctx.Request.Method;
        var path = ctx.Request.Path.Value ?? "/";
        var allow = ctx.Response.Headers.Allow.ToString();
        var detail = status switch
        {
            404 => $"no such endpoint: {method} {path}",
            405 => string.IsNullOrEmpty(allow)
                ? $"method {method} is not allowed on {path}"
                : $"method {method} is not allowed on {path} (allowed: {allow})",
            415 => string.IsNullOrEmpty(ctx.Request.ContentType)
                ? "this endpoint takes a JSON body: set 'Content-Type: application/json'"
                : $"unsupported Content-Type '{ctx.Request.ContentType}': this endpoint takes 'application/json'",
            _ => ReasonPhrases.GetReasonPhrase(status),
        };
        return WriteAsync(ctx, status, CodeForStatus(status), detail, allow);
    }

    /// <summary>The stable code for an error that only has an HTTP status to go on.</summary>
    public static string CodeForStatus(int status) => status switch
    {
        401 => UnauthorizedCode,
        404 => ErrorCodes.NotFound,
        405 => MethodNotAllowedCode,
        409 => ErrorCodes.Conflict,
        413 => ErrorCodes.PayloadTooLarge,
        415 => UnsupportedMediaTypeCode,
        421 => HostNotAllowedCode,
        >= 400 and < 500 => ErrorCodes.InvalidRequest,
        _ => ErrorCodes.Internal,
    };

    private static string TitleFor(string code, int status) => code switch
    {
        ErrorCodes.InvalidJson => "Invalid JSON",
        ErrorCodes.Internal => "Internal server error",
        _ when string.IsNullOrEmpty(code) => ReasonPhrases.GetReasonPhrase(status),
        // "sandbox_not_found" -> "Sandbox not found": readable without a lookup table that
        // would drift from ErrorCodes.
        _ => char.ToUpperInvariant(code[0]) + code[1..].Replace('_', ' '),
    };
}
