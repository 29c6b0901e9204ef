namespace Bough.Engine.Lifecycle;

/// <summary>What holds a sandbox's lifecycle lease: named in 409 answers ("branch in progress").</summary>
public enum SandboxOperation
{
    Create,
    Delete,
    Snapshot,
    Branch,
    Pause,
    Resume,
    Shutdown,
    /// <summary>A deadline set or cleared (POST /timeout, or an expiry that cannot pause).</summary>
    Timeout,
    /// <summary>An egress policy change (PUT /network).</summary>
    Network,
}

internal static class SandboxOperationNames
{
    public static string ToVerb(this SandboxOperation op) => op switch
    {
        SandboxOperation.Create => "create",
        SandboxOperation.Delete => "delete",
        SandboxOperation.Snapshot => "snapshot",
        SandboxOperation.Branch => "branch",
        SandboxOperation.Pause => "pause",
        SandboxOperation.Resume => "resume",
        SandboxOperation.Shutdown => "shutdown",
        SandboxOperation.Timeout => "timeout change",
        SandboxOperation.Network => "network change",
        _ => op.ToString(),
    };
}
