using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Endpoints;

/// <summary>File metadata operations beyond transfer: stat, mkdir, move, watch.</summary>
internal static class FileOperationEndpoints
{
    public static void MapFileOperationEndpoints(this RouteGroupBuilder group)
    {
        group.MapGet("/{id}/files/stat", Stat)
            .WithName("StatFile").WithTags("files")
            .WithDescription("Metadata of a path (symlinks not followed: `target` says where they point).")
            .ProducesBoughProblems(400, 404, 409, 500, 502, 503);

        group.MapPost("/{id}/files/mkdir", Mkdir)
            .WithName("MakeDirectory").WithTags("files")
            .WithDescription("mkdir -p. `created` is false when the directory already existed; an existing non-directory is 409.")
            .Accepts<MkdirRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500, 502, 503);

        group.MapPost("/{id}/files/move", Move)
            .WithName("MoveFile").WithTags("files")
            .WithDescription("Renames within the guest (rename(2): replaces a file or empty directory; creates the destination's parents; not across file systems). Answers the entry at its new place.")
            .Accepts<MoveFileRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapGet("/{id}/files/watch", Watch)
            .WithName("WatchDirectory").WithTags("files")
            .WithDescription($"Watches a directory (inotify; `recursive=true` for subdirectories) as `{ExecEndpoints.NdjsonMediaType}`: `start` once in place, then `create`/`write`/`remove`/`rename`/`chmod` with `name` relative to it, `keepalive` while idle (every `keepaliveSeconds`, default 15), `end` when the directory itself goes away, `error` when events were lost.")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);
    }

    private static async Task<Ok<FileEntry>> Stat(string id, [FromQuery] string? path, HttpRequest request, [FromServices] IGuestProcesses engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.StatAsync(id, GuestPath.Require(path, request), ct));

    private static async Task<Ok<MkdirResult>> Mkdir(string id, HttpContext ctx, [FromServices] IGuestProcesses engine)
    {
        var r = await JsonBody.ReadAsync<MkdirRequest>(ctx.Request, ctx.RequestAborted);
        var path = r.Path ?? throw new BoughException(ErrorCodes.InvalidPath, "path is required (an absolute guest path)");
        var created = await engine.MkdirAsync(id, path, ctx.RequestAborted);
        return TypedResults.Ok(new MkdirResult(path, created));
    }

    private static async Task<Ok<FileEntry>> Move(string id, HttpContext ctx, [FromServices] IGuestProcesses engine)
    {
        var r = await JsonBody.ReadAsync<MoveFileRequest>(ctx.Request, ctx.RequestAborted);
        return TypedResults.Ok(await engine.MoveAsync(id, r.Source!, r.Destination!, ctx.RequestAborted));
    }

    private static NdjsonStream<FileChange, FileWatchEvent> Watch(
        string id, [FromQuery] string? path, [FromQuery] bool? recursive, [FromQuery] double? keepaliveSeconds,
        HttpContext ctx, [FromServices] IGuestProcesses engine, [FromServices] ILoggerFactory loggers)
    {
        var keepalive = ProcessEndpoints.Seconds(keepaliveSeconds, "keepaliveSeconds") ?? ProcessEndpoints.DefaultKeepalive;
        return new NdjsonStream<FileChange, FileWatchEvent>(
            engine.WatchAsync(id, GuestPath.Require(path, ctx.Request), recursive ?? false, keepalive, ctx.RequestAborted),
            StreamLines.ToLine, static _ => false, StreamLines.WatchError, new FileWatchEvent { Type = "end" },
            loggers.CreateLogger(typeof(FileOperationEndpoints).FullName!));
    }
}
