using System.Reflection;
using Bough.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;

namespace Bough.Server.Endpoints;

/// <summary>Streams an opened guest file to the client and closes it afterwards.</summary>
internal sealed class GuestFileResult(GuestFile file) : IResult, IEndpointMetadataProvider
{
    public async Task ExecuteAsync(HttpContext ctx)
    {
        await using var _ = file;
        var response = ctx.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/octet-stream";
        if (file.Length is { } length)
            response.ContentLength = length;
        // A failure mid-copy propagates to the error middleware, which aborts the connection:
        // with Content-Length set (or chunking unterminated) the client sees a short read.
        await file.Content.CopyToAsync(response.Body, 128 * 1024, ctx.RequestAborted);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(200, typeof(Stream), ["application/octet-stream"]));
}
