using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// A failure with a stable code that the API reports as problem+json. The HTTP status is
/// derived from the code (<see cref="ErrorMap.StatusOf"/>) so every layer agrees on it.
/// </summary>
public sealed class BoughException(string code, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Code { get; } = code;

    /// <summary>For 429: when the client should try again (sent as Retry-After).</summary>
    public TimeSpan? RetryAfter { get; init; }

    public int Status => ErrorMap.StatusOf(Code);

    public static BoughException NotFound(string id) =>
        new(ErrorCodes.SandboxNotFound, $"no sandbox with id '{id}'");

    public static BoughException Invalid(string message) => new(ErrorCodes.InvalidRequest, message);

    public static BoughException NotRunning(string message) => new(ErrorCodes.SandboxNotRunning, message);
}
