using System.Text.Json.Serialization;
using Bough.E2b.Envd.Connect;

namespace Bough.E2b.Envd.Filesystem;

internal sealed class WatcherIdRequest
{
    [JsonPropertyName("watcherId")] public string? WatcherId { get; set; }
}

internal sealed record CreateWatcherResponse([property: JsonPropertyName("watcherId")] string WatcherId);

internal sealed record GetWatcherEventsResponse([property: JsonPropertyName("events")] IReadOnlyList<FilesystemEvent> Events);

/// <summary><c>filesystem.Filesystem/CreateWatcher</c>: a polling watch of a directory (see <see cref="PollingWatchers"/>).</summary>
internal sealed class CreateWatcherMethod(PollingWatchers watchers) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/CreateWatcher";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<WatchRequest>();
        var path = call.Request.Resolve(request.Path);
        return new CreateWatcherResponse(await watchers.CreateAsync(call.Request.Id, path, request.Recursive, call.Aborted));
    }
}

/// <summary><c>filesystem.Filesystem/GetWatcherEvents</c>: the changes since the last poll.</summary>
internal sealed class GetWatcherEventsMethod(PollingWatchers watchers) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/GetWatcherEvents";

    public Task<object> CallAsync(ConnectCall call) =>
        Task.FromResult<object>(new GetWatcherEventsResponse(watchers.Drain(call.Request.Id, call.Read<WatcherIdRequest>().WatcherId ?? "")));
}

/// <summary><c>filesystem.Filesystem/RemoveWatcher</c>: stops a polling watch.</summary>
internal sealed class RemoveWatcherMethod(PollingWatchers watchers) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/RemoveWatcher";

    public async Task<object> CallAsync(ConnectCall call)
    {
        await watchers.RemoveAsync(call.Request.Id, call.Read<WatcherIdRequest>().WatcherId ?? "");
        return new EmptyResponse();
    }
}
