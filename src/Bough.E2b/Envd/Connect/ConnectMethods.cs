using System.Text.Json;

namespace Bough.E2b.Envd.Connect;

/// <summary>One call as a handler sees it: the bound request, the decoded request message and the client's deadline.</summary>
internal sealed record ConnectCall(EnvdRequest Request, JsonElement Message, TimeSpan? Deadline)
{
    public CancellationToken Aborted => Request.Http.RequestAborted;

    /// <summary>The request message as <typeparamref name="T"/> (proto3 JSON: lowerCamel names; unknown fields ignored).</summary>
    public T Read<T>() where T : new()
    {
        try
        {
            return Message.Deserialize<T>(E2bJson.Options) ?? new T();
        }
        catch (JsonException ex)
        {
            throw new ConnectException(ConnectError.InvalidArgument, $"malformed request message at {ex.Path ?? "$"}: {ex.Message}");
        }
    }
}

/// <summary>
/// A unary envd method (<c>process.Process/List</c>, <c>filesystem.Filesystem/Stat</c>, ...).
/// Register an implementation in DI (see <c>E2bRegistration.AddE2b</c>) and the dispatcher routes it.
/// </summary>
internal interface IConnectUnaryMethod
{
    /// <summary>"package.Service/Method", e.g. "filesystem.Filesystem/Stat".</summary>
    string Name { get; }

    /// <summary>The response message, serialised with proto3 JSON rules (defaults left out).</summary>
    Task<object> CallAsync(ConnectCall call);
}

/// <summary>A server-streaming envd method (<c>process.Process/Start</c>, <c>/Connect</c>, <c>filesystem.Filesystem/WatchDir</c>).</summary>
internal interface IConnectStreamMethod
{
    string Name { get; }

    /// <summary>
    /// Sends messages with <see cref="ConnectStream.SendAsync"/>. Returning ends the stream cleanly;
    /// a <see cref="ConnectException"/> (or any failure) ends it with that error in the end message.
    /// </summary>
    Task StreamAsync(ConnectCall call, ConnectStream stream);
}
