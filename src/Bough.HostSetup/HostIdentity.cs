namespace Bough.HostSetup;

/// <summary>Who we run as. Root decides whether we may install packages or use system paths.</summary>
public static class HostIdentity
{
    /// <summary>True when the effective uid is 0 (.NET reports that as a privileged process on Unix).</summary>
    public static bool IsRoot() => Environment.IsPrivilegedProcess;
}
