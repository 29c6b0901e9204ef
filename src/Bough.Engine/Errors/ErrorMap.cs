using Bough.AgentClient;
using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// The one place where internal failures become API error codes, and codes become HTTP
/// statuses. Codes are the stable contract (<see cref="ErrorCodes"/>); messages are for people.
/// </summary>
public static class ErrorMap
{
    public static int StatusOf(string code) => code switch
    {
        ErrorCodes.InvalidRequest or ErrorCodes.InvalidJson or ErrorCodes.InvalidPath => 400,
        ErrorCodes.IsADirectory or ErrorCodes.NotADirectory => 400,
        ErrorCodes.NotFound or ErrorCodes.SandboxNotFound or ErrorCodes.ImageNotFound
            or ErrorCodes.FileNotFound or ErrorCodes.SnapshotNotFound or ErrorCodes.TemplateNotFound
            or ErrorCodes.ImageRefNotFound or ErrorCodes.ProcessNotFound => 404,
        ErrorCodes.SandboxNotRunning or ErrorCodes.SandboxBusy or ErrorCodes.Conflict
            or ErrorCodes.TagExists or ErrorCodes.SnapshotInUse or ErrorCodes.ImageInUse or ErrorCodes.ImageExists
            or ErrorCodes.TemplateExists or ErrorCodes.TemplateInUse => 409,
        // The registry refused the daemon's credentials: retrying the same request will not help
        // (unlike a 5xx), and 401 would wrongly suggest the daemon itself wants authentication.
        ErrorCodes.RegistryUnauthorized or ErrorCodes.PermissionDenied => 403,
        ErrorCodes.PayloadTooLarge => 413,
        // Well-formed requests for content we refuse to run, and templates whose ready check never passed.
        ErrorCodes.LayerRejected or ErrorCodes.ImageUnsupported or ErrorCodes.TemplateNotReady => 422,
        ErrorCodes.TooManyCaptures or ErrorCodes.TooManyExecs => 429,
        // Upstream trouble: the registry is down, what it (or an archive) sent is broken, or a VM
        // failed to start or capture.
        ErrorCodes.RegistryUnavailable or ErrorCodes.ImageCorrupt or ErrorCodes.ImageBuildFailed
            or ErrorCodes.CreateFailed or ErrorCodes.GuestError => 502,
        // The host is full (guest memory or sandbox count): not the caller's fault, may pass.
        ErrorCodes.AgentUnavailable or ErrorCodes.CapacityExceeded => 503,
        // The guest agent baked into this sandbox's image or snapshot is older than the feature.
        ErrorCodes.GuestUnsupported => 501,
        _ => 500,
    };

    /// <summary>A failure the guest agent reported (or the channel to it), as seen by API callers.</summary>
    public static BoughException FromAgent(AgentException ex, string sandboxId) => ex.Code switch
    {
        "file_not_found" => new(ErrorCodes.FileNotFound, ex.Message, ex),
        "not_a_directory" => new(ErrorCodes.NotADirectory, ex.Message, ex),
        "is_a_directory" => new(ErrorCodes.IsADirectory, ex.Message, ex),
        "invalid_path" => new(ErrorCodes.InvalidPath, ex.Message, ex),
        "bad_request" or "unsupported" => new(ErrorCodes.InvalidRequest, ex.Message, ex),
        "permission_denied" => new(ErrorCodes.PermissionDenied, ex.Message, ex),
        "already_exists" => new(ErrorCodes.Conflict, ex.Message, ex),
        // Only the process table answers not_found: no such process, or it has exited.
        "not_found" => new(ErrorCodes.ProcessNotFound, ex.Message, ex),
        // A listing past the host's or the agent's cap.
        AgentClient.AgentException.TooLarge => new(ErrorCodes.PayloadTooLarge, ex.Message, ex),
        "agent_unavailable" => new(ErrorCodes.AgentUnavailable, $"the agent of sandbox {sandboxId} is unavailable: {ex.Message}", ex),
        _ => new(ErrorCodes.GuestError, $"the guest reported {ex.Code}: {ex.Message}", ex),
    };

    /// <summary>A VM that did not come up (boot, restore, agent handshake), with the console tail when there is one.</summary>
    public static BoughException StartFailed(string what, Exception ex, string consoleTail)
    {
        var reason = ex is BoughException or AgentException or IOException or TimeoutException or Vmm.QmpException
            or Bough.Snapshots.SnapshotException or Vmm.VmStartException
            ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
        return new BoughException(ErrorCodes.CreateFailed,
            $"{what}: {reason}" + (consoleTail.Length > 0 ? $"\n--- console (last lines) ---\n{consoleTail}" : ""), ex);
    }

    /// <summary>A capture that failed inside the capturer (the sandbox itself keeps running).</summary>
    public static BoughException CaptureFailed(string sandboxId, Exception ex) =>
        new(ErrorCodes.GuestError, $"capturing sandbox {sandboxId} failed: {ex.Message}", ex);

    public static BoughException ShuttingDown(Exception? inner = null) =>
        new(ErrorCodes.SandboxNotRunning, "the daemon is shutting down", inner);
}
