using System.Globalization;
using System.Text.Json.Serialization;
using Bough.Contracts;

namespace Bough.E2b.Envd.Filesystem;

// filesystem.Filesystem messages in proto3 JSON, as e2b 2.51's filesystem.proto declares them.

/// <summary>StatRequest, MakeDirRequest, RemoveRequest: <c>{path}</c>.</summary>
internal sealed class PathRequest
{
    [JsonPropertyName("path")] public string? Path { get; set; }
}

internal sealed class ListDirRequest
{
    [JsonPropertyName("path")] public string? Path { get; set; }
    [JsonPropertyName("depth")] public uint? Depth { get; set; }
}

internal sealed class MoveRequest
{
    [JsonPropertyName("source")] public string? Source { get; set; }
    [JsonPropertyName("destination")] public string? Destination { get; set; }
}

/// <summary>WatchDirRequest and CreateWatcherRequest (<c>allowNetworkMounts</c> has no meaning in a Bough guest).</summary>
internal sealed class WatchRequest
{
    [JsonPropertyName("path")] public string? Path { get; set; }
    [JsonPropertyName("recursive")] public bool Recursive { get; set; }
    [JsonPropertyName("includeEntry")] public bool IncludeEntry { get; set; }
}

/// <summary>StatResponse, MakeDirResponse, MoveResponse.</summary>
internal sealed record EntryResponse([property: JsonPropertyName("entry")] EntryInfo Entry);

internal sealed record ListDirResponse([property: JsonPropertyName("entries")] IReadOnlyList<EntryInfo> Entries);

internal sealed record EmptyResponse;

/// <summary><c>EntryInfo</c>: what the SDK's <c>getInfo</c>, <c>list</c>, <c>rename</c> and watch events show.</summary>
internal sealed record EntryInfo
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("mode")] public uint Mode { get; init; }
    [JsonPropertyName("permissions")] public string? Permissions { get; init; }
    [JsonPropertyName("owner")] public string? Owner { get; init; }
    [JsonPropertyName("group")] public string? Group { get; init; }
    [JsonPropertyName("modifiedTime")] public string? ModifiedTime { get; init; }
    [JsonPropertyName("symlinkTarget")] public string? SymlinkTarget { get; init; }

    public const string File = "FILE_TYPE_FILE", Directory = "FILE_TYPE_DIRECTORY", Symlink = "FILE_TYPE_SYMLINK",
        Unspecified = "FILE_TYPE_UNSPECIFIED";

    /// <summary>
    /// The engine's entry as envd describes one: <c>mode</c> the permission bits, <c>permissions</c>
    /// as <c>ls -l</c> shows them, the path absolute (the engine's, else <paramref name="path"/>).
    /// Other file kinds (sockets, devices) are UNSPECIFIED, which the SDK's list skips, as with envd.
    /// </summary>
    public static EntryInfo From(FileEntry e, string? path = null) => new()
    {
        Name = e.Name,
        Type = e.Type switch
        {
            "file" => File,
            "dir" => Directory,
            "symlink" => Symlink,
            _ => Unspecified,
        },
        Path = e.Path ?? path ?? e.Name,
        Size = e.Size,
        Mode = (uint)e.Mode & 0x1FF,
        Permissions = e.Permissions,
        Owner = e.Owner,
        Group = e.Group,
        ModifiedTime = Timestamp(e.Mtime),
        SymlinkTarget = e.Target,
    };

    /// <summary>
    /// RFC 3339 in UTC with 'Z' (and nine fraction digits), the form protobuf's Timestamp JSON
    /// parser takes; it refuses a fraction together with a numeric offset, as .NET would write it.
    /// </summary>
    public static string Timestamp(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffff'00Z'", CultureInfo.InvariantCulture);
}

/// <summary>The <c>WatchDirResponse.event</c> oneof.</summary>
internal sealed record WatchDirResponse
{
    [JsonPropertyName("start")] public WatchStart? Start { get; init; }
    [JsonPropertyName("filesystem")] public FilesystemEvent? Filesystem { get; init; }
    [JsonPropertyName("keepalive")] public WatchKeepAlive? Keepalive { get; init; }
}

internal sealed record WatchStart;

internal sealed record WatchKeepAlive;

/// <summary><c>FilesystemEvent{name (relative to the watched directory), type: EventType, entry?}</c>.</summary>
internal sealed record FilesystemEvent(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("entry")] EntryInfo? Entry);
