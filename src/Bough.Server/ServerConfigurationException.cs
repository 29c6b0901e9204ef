namespace Bough.Server;

/// <summary>A server configuration the daemon refuses to start with; the message says why and what to do.</summary>
public sealed class ServerConfigurationException : Exception
{
    public ServerConfigurationException() { }

    public ServerConfigurationException(string message) : base(message) { }

    public ServerConfigurationException(string message, Exception inner) : base(message, inner) { }
}
