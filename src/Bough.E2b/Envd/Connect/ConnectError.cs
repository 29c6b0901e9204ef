using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace Bough.E2b.Envd.Connect;

/// <summary>Connect protocol errors: a string code and a message, as a unary body or inside a stream's end message.</summary>
internal sealed record ConnectError(
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("message")] string Message)
{
    public const string InvalidArgument = "invalid_argument";
    public const string NotFound = "not_found";
    public const string AlreadyExists = "already_exists";
    public const string PermissionDenied = "permission_denied";
    public const string Unauthenticated = "unauthenticated";
    public const string Unavailable = "unavailable";
    public const string Unimplemented = "unimplemented";
    public const string DeadlineExceeded = "deadline_exceeded";
    public const string ResourceExhausted = "resource_exhausted";
    public const string FailedPrecondition = "failed_precondition";
    public const string Internal = "internal";

    /// <summary>The Connect code for an HTTP status of Bough's (the Connect spec's table, read backwards).</summary>
    public static string CodeForStatus(int status) => status switch
    {
        400 or 413 or 415 => InvalidArgument,
        401 => Unauthenticated,
        403 => PermissionDenied,
        404 => NotFound,
        409 => AlreadyExists,
        429 => ResourceExhausted,
        501 => Unimplemented,
        502 or 503 => Unavailable,
        504 => DeadlineExceeded,
        _ => Internal,
    };

    /// <summary>The HTTP status a unary error is sent with (Connect's table).</summary>
    public static int StatusForCode(string code) => code switch
    {
        InvalidArgument or FailedPrecondition => 400,
        Unauthenticated => 401,
        PermissionDenied => 403,
        NotFound => 404,
        AlreadyExists => 409,
        ResourceExhausted => 429,
        Unimplemented => 501,
        Unavailable => 503,
        DeadlineExceeded => 504,
        _ => 500,
    };

    public static Task WriteUnaryAsync(HttpContext ctx, int status, string code, string message)
    {
        var response = ctx.Response;
        response.Clear();
        response.StatusCode = status;
        return response.WriteAsJsonAsync(new ConnectError(code, message), E2bJson.Options, "application/json", ctx.RequestAborted);
    }
}

/// <summary>A failure a handler reports with a Connect code (unary: the error body; stream: the end message).</summary>
internal sealed class ConnectException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
