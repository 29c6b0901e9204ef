using System.Text.Json.Serialization;
using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Bough.E2b.Envd;

/// <summary>
/// envd's <c>GET /files</c> (raw bytes) and <c>POST /files</c> (multipart, one part per file, or one
/// octet-stream body) over the engine's streamed file operations. Bodies stream through, never
/// buffered whole. Parents are created and files truncated (the engine's write does both); for a
/// user other than root the file and the parent directories the write created are then given to
/// that user, as envd creates them as the user.
/// </summary>
internal sealed class FilesHandler(ISandboxService sandboxes, IGuestProcesses guest)
{
    /// <summary>Upload ceiling, as for Bough's own file endpoint; the guest's disk is the real limit.</summary>
    public const long MaxUploadBytes = 4L * 1024 * 1024 * 1024;

    public Task HandleAsync(EnvdRequest request)
    {
        var method = request.Http.Request.Method;
        if (HttpMethods.IsGet(method))
            return DownloadAsync(request);
        if (HttpMethods.IsPost(method))
            return UploadAsync(request);
        throw new E2bException(405, "/files takes GET or POST");
    }

    private async Task DownloadAsync(EnvdRequest request)
    {
        var http = request.Http;
        var path = request.Resolve(http.Request.Query["path"].ToString());
        await using var file = await sandboxes.OpenFileAsync(request.Id, path, http.RequestAborted);
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/octet-stream";
        if (file.Length is { } length)
            http.Response.ContentLength = length;
        await file.Content.CopyToAsync(http.Response.Body, http.RequestAborted);
    }

    private async Task UploadAsync(EnvdRequest request)
    {
        var http = request.Http;
        var ct = http.RequestAborted;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = MaxUploadBytes;
        var queryPath = http.Request.Query["path"].ToString();
        var written = new List<WrittenEntry>();
        var createdDirs = new List<string>();
        if (MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media)
            && media.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            var boundary = HeaderUtilities.RemoveQuotes(media.Boundary).Value
                ?? throw E2bException.Invalid("multipart body without a boundary");
            var reader = new MultipartReader(boundary, http.Request.Body);
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                var fileName = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                    ? HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value
                    : null;
                // A single write names its path in the query (and the file name); a multi-file write only in each part.
                var path = request.Resolve(written.Count == 0 && !string.IsNullOrEmpty(queryPath) ? queryPath : fileName);
                await AddMissingParentsAsync(request, path, createdDirs, ct);
                await sandboxes.WriteFileAsync(request.Id, path, section.Body, ct);
                written.Add(Entry(path));
            }
        }
        else
        {
            if (http.Request.Headers.ContentEncoding.Count > 0)
                throw new E2bException(415, "compressed uploads (Content-Encoding) are not supported");
            var path = request.Resolve(queryPath);
            await AddMissingParentsAsync(request, path, createdDirs, ct);
            await sandboxes.WriteFileAsync(request.Id, path, http.Request.Body, ct);
            written.Add(Entry(path));
        }
        if (written.Count == 0)
            throw E2bException.Invalid("the upload holds no file");
        await GiveToUserAsync(request, [.. written.Select(w => w.Path), .. createdDirs], ct);
        await http.Response.WriteAsJsonAsync(written, E2bJson.Options, ct);
    }

    /// <summary>The parent directories writing <paramref name="path"/> will create, when they must go to a non-root user.</summary>
    private async Task AddMissingParentsAsync(EnvdRequest request, string path, List<string> createdDirs, CancellationToken ct)
    {
        if (request.User is null or "root" or "0")
            return;
        List<string> missing;
        try
        {
            missing = await MissingDirectories.FindAsync(guest, request.Id, MissingDirectories.Parent(path), ct);
        }
        catch (BoughException ex) when (ex.Code == ErrorCodes.GuestUnsupported)
        {
            return; // an agent older than stat: parents stay root's, as before
        }
        foreach (var dir in missing)
            if (!createdDirs.Contains(dir))
                createdDirs.Add(dir);
    }

    /// <summary>Files are written as root; a non-root user gets them (owner and that user's group), as envd does.</summary>
    private async Task GiveToUserAsync(EnvdRequest request, List<string> paths, CancellationToken ct)
    {
        if (request.User is null or "root" or "0")
            return;
        var result = await sandboxes.ExecAsync(request.Id,
            new ExecCommand(["chown", "--no-dereference", request.User + ":", "--", .. paths], User: "root"), ct);
        if (result.ExitCode != 0)
            throw new E2bException(401, $"cannot give the file to user '{request.User}': {result.Stderr.Trim()}");
    }

    private static WrittenEntry Entry(string path) => new(path, Path.GetFileName(path), "file");

    private sealed record WrittenEntry(
        [property: JsonPropertyName("path")] string Path,
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("type")] string Type);
}
