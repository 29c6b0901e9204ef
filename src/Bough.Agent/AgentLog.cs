namespace Bough.Agent;

/// <summary>
/// Minimal line logger to stderr. In the guest stderr is the serial console, so lines are short,
/// timestamped by uptime-independent wall clock, and written with one call each.
/// </summary>
internal sealed class AgentLog(TextWriter output, bool verbose)
{
    private readonly object _lock = new();

    public void Info(string message) => Write("info", message);
    public void Warn(string message) => Write("warn", message);
    public void Error(string message) => Write("error", message);
    public void Debug(string message) { if (verbose) Write("debug", message); }

    private void Write(string level, string message)
    {
        lock (_lock)
        {
            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} bough-agent {level}: {message}");
                output.Flush();
            }
            catch (IOException)
            {
                // A broken console must never take the agent down.
            }
        }
    }
}
