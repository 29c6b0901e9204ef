namespace Bough.Images;

/// <summary>
/// Finds the guest agent binary that goes into base images. Build/Agent.targets publishes it next to
/// every host program that needs it (<c>&lt;output&gt;/agent/bough-agent</c>); <c>BOUGH_AGENT_PATH</c>
/// overrides that for development and tests.
/// </summary>
public static class AgentLocator
{
    public const string EnvironmentVariable = "BOUGH_AGENT_PATH";
    public const string FileName = "bough-agent";

    /// <summary>
    /// <c>$BOUGH_AGENT_PATH</c> when set (returned even if missing, so the error names the path the user
    /// chose instead of silently using another binary), else <c>&lt;AppContext.BaseDirectory&gt;/agent/bough-agent</c>
    /// if it exists, else null.
    /// </summary>
    public static string? Find()
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        var bundled = Path.Combine(AppContext.BaseDirectory, "agent", FileName);
        return File.Exists(bundled) ? bundled : null;
    }
}
