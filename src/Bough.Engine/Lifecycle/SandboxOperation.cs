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
        _ => op.ToString(),
    };
}
