using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// A failure with a stable code that the API reports as problem+json. The HTTP status is
/// derived from the code so every layer agrees on it.
/// </summary>
public sealed class BoughException(string code, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Code { get; } = code;

    /// <summary>For 429: when the client should try again (sent as Retry-After).</summary>
    public TimeSpan? RetryAfter { get; init; }

    public int Status => StatusFor(Code);

    public static int StatusFor(string code) => code switch
    {
        ErrorCodes.InvalidRequest or ErrorCodes.InvalidJson or ErrorCodes.InvalidPath => 400,
        ErrorCodes.NotFound or ErrorCodes.SandboxNotFound or ErrorCodes.ImageNotFound
            or ErrorCodes.FileNotFound or ErrorCodes.SnapshotNotFound or ErrorCodes.TemplateNotFound
            or ErrorCodes.ImageRefNotFound => 404,
        ErrorCodes.IsADirectory or ErrorCodes.NotADirectory => 400,
        ErrorCodes.SandboxNotRunning or ErrorCodes.SandboxBusy or ErrorCodes.Conflict
            or ErrorCodes.TagExists or ErrorCodes.SnapshotInUse or ErrorCodes.ImageInUse or ErrorCodes.ImageExists
            or ErrorCodes.TemplateExists or ErrorCodes.TemplateInUse => 409,
        // The registry refused the daemon's credentials: retrying the same request will not help
        // (unlike a 5xx), and 401 would wrongly suggest the daemon itself wants authentication.
        ErrorCodes.RegistryUnauthorized => 403,
        // Upstream trouble: the registry is down, or what it (or an archive) sent is broken.
        ErrorCodes.RegistryUnavailable or ErrorCodes.ImageCorrupt or ErrorCodes.ImageBuildFailed => 502,
        // Well-formed requests for content we refuse to run, and templates whose ready check never passed.
        ErrorCodes.LayerRejected or ErrorCodes.ImageUnsupported or ErrorCodes.TemplateNotReady => 422,
        ErrorCodes.TooManyCaptures => 429,
        ErrorCodes.PayloadTooLarge => 413,
        ErrorCodes.PermissionDenied => 403,
        ErrorCodes.AgentUnavailable => 503,
        ErrorCodes.CreateFailed or ErrorCodes.GuestError => 502,
        _ => 500,
    };

    public static BoughException NotFound(string id) =>
        new(ErrorCodes.SandboxNotFound, $"no sandbox with id '{id}'");

    public static BoughException Invalid(string message) => new(ErrorCodes.InvalidRequest, message);
}
