using Bough.Contracts;

namespace Bough.Client;

/// <summary>
/// A failed API call, carrying the daemon's problem details (or the closest equivalent when the
/// failure never got a problem response: connection refused, a stream cut short).
/// </summary>
public sealed class BoughApiException : Exception
{
    /// <summary>The daemon could not be reached at all (refused, unresolvable, TLS failure).</summary>
    public const string Unreachable = "daemon_unreachable";

    /// <summary>The connection failed or was cut while a response was being read.</summary>
    public const string ConnectionLost = "connection_lost";

    /// <summary>
    /// 401: the daemon wants its API token and got none or another one (the daemon's code; the
    /// message says where this client looked for the token).
    /// </summary>
    public const string Unauthorized = ErrorCodes.Unauthorized;

    /// <summary>The daemon answered with something that is not a Bough API response.</summary>
    public const string InvalidResponse = "invalid_response";

    public BoughApiException(int status, string code, string? title, string detail, Exception? inner = null)
        : base($"{detail} ({code})", inner)
    {
        Status = status;
        Code = code;
        Title = title;
        Detail = detail;
    }

    /// <summary>
    /// The HTTP status, or 0 when none applies: the daemon was unreachable, the connection broke,
    /// an exec stream reported an error after its 200 response had started, or a polled image
    /// reported that its pull, import or build failed.
    /// </summary>
    public int Status { get; }

    /// <summary>A stable machine-readable code: one of <see cref="ErrorCodes"/> or the constants above.</summary>
    public string Code { get; }

    public string? Title { get; }

    /// <summary>Human-readable explanation, suitable for showing to a user as is.</summary>
    public string Detail { get; }

    /// <summary>
    /// How long the daemon asked the caller to wait before trying again (its <c>Retry-After</c>
    /// header, e.g. on 429 too_many_captures); null when it gave none.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }
}
