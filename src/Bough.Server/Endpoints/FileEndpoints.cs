using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>Guest file transfer. Bodies are streamed in both directions, never buffered whole.</summary>
internal static class FileEndpoints
{
    /// <summary>Upload ceiling; the engine applies its own (disk-size) limits below this.</summary>
    public const long MaxUploadBytes = 4L * 1024 * 1024 * 1024;

    public static void MapFileEndpoints(this RouteGroupBuilder group)
    {
        group.MapPut("/{id}/files", Upload)
            .WithName("UploadFile").WithTags("files")
            .WithMetadata(new RequestSizeLimit(MaxUploadBytes))
            .ProducesBoughProblems(400, 404, 409, 413, 500, 502, 503);

        group.MapGet("/{id}/files", Download)
            .WithName("DownloadFile").WithTags("files")
            .ProducesBoughProblems(400, 404, 409, 500, 502, 503);

        group.MapDelete("/{id}/files", DeleteFile)
            .WithName("DeleteFile").WithTags("files")
            .ProducesBoughProblems(400, 404, 409, 500, 502, 503);

        group.MapGet("/{id}/files/list", ListFiles)
            .WithName("ListFiles").WithTags("files")
            .WithDescription("Lists a directory; `depth` (1..64, default 1) descends into subdirectories (breadth first, symlinks not entered), each entry then carrying its `path`. One with too many entries (or names) is 413 `payload_too_large`: list a subdirectory, or run ls or find with exec.")
            .ProducesBoughProblems(400, 404, 409, 413, 500, 502, 503);
    }

    /// <remarks>
    /// Binding the body as a <see cref="Stream"/> hands the engine Kestrel's request stream
    /// directly, so a multi-GiB upload costs one chunk of memory, not the file size.
    /// </remarks>
    private static async Task<NoContent> Upload(
        string id, [FromQuery] string? path, HttpRequest request, Stream body, [FromServices] ISandboxService engine, CancellationToken ct)
    {
        await engine.WriteFileAsync(id, GuestPath.Require(path, request), body, ct);
        return TypedResults.NoContent();
    }

    private static async Task<GuestFileResult> Download(
        string id, [FromQuery] string? path, HttpRequest request, [FromServices] ISandboxService engine, CancellationToken ct)
    {
        // Opening first means "no such file" is still a clean 404 problem: nothing is sent
        // until the engine has the file in hand.
        var file = await engine.OpenFileAsync(id, GuestPath.Require(path, request), ct);
        return new GuestFileResult(file);
    }

    private static async Task<NoContent> DeleteFile(
        string id, [FromQuery] string? path, HttpRequest request, [FromServices] ISandboxService engine, CancellationToken ct)
    {
        await engine.DeleteFileAsync(id, GuestPath.Require(path, request), ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<IReadOnlyList<FileEntry>>> ListFiles(
        string id, [FromQuery] string? path, [FromQuery] int? depth, HttpRequest request,
        [FromServices] ISandboxService engine, [FromServices] IGuestProcesses files, CancellationToken ct) =>
        TypedResults.Ok(depth is { } d
            ? await files.ListFilesAsync(id, GuestPath.Require(path, request), d, ct)
            : await engine.ListFilesAsync(id, GuestPath.Require(path, request), ct));
}
