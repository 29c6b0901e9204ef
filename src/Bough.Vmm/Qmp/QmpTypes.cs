using System.Text.Json;

namespace Bough.Vmm;

/// <summary>An asynchronous QMP event (STOP, RESUME, SHUTDOWN, ...). <see cref="Data"/> is detached from any document.</summary>
public sealed record QmpEvent(string Name, JsonElement? Data, DateTimeOffset Timestamp);

/// <summary>QEMU answered a command with <c>{"error": {"class": ..., "desc": ...}}</c>.</summary>
public sealed class QmpException : Exception
{
    public QmpException(string command, string errorClass, string description)
        : base($"QMP command '{command}' failed: {errorClass}: {description}")
    {
        Command = command;
        ErrorClass = errorClass;
        Description = description;
    }

    public string Command { get; }
    public string ErrorClass { get; }
    public string Description { get; }
}

/// <summary>The QMP connection is gone (QEMU exited or the socket closed) while a command was pending.</summary>
public sealed class QmpDisconnectedException : IOException
{
    public QmpDisconnectedException(string message, Exception? inner = null) : base(message, inner) { }
}
