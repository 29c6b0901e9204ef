using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>
/// Images: pull, import, build (waiting by default, <c>?async=true</c> for 202 + poll), list,
/// inspect, delete. Names contain '/' and ':', so the per-image routes are catch-alls and accept
/// either per-segment or whole-name URL encoding.
/// </summary>
internal static class ImagesEndpoints
{
    public static void MapImagesEndpoints(this IEndpointRouteBuilder app)
    {
        var images = app.MapGroup("/v1/images");

        images.MapPost("/", Pull)
            .WithName("PullImage").WithTags("images")
            .WithDescription("Pulls an image from a registry and publishes it as a bootable image. Waits by default: 201 when published, 200 when the same manifest was already there. `?async=true`: 202 with the image in state `pulling` and a Location to poll. A request for a name being pulled joins that pull. Registry errors: image_ref_not_found 404, registry_unauthorized 403, registry_unavailable and image_corrupt 502, layer_rejected and image_unsupported 422.")
            .Accepts<PullImageRequest>("application/json")
            .Produces<Image>(200).Produces<Image>(201).Produces<Image>(202)
            .ProducesBoughProblems(400, 403, 404, 409, 422, 500, 502);

        images.MapPost("/import", Import)
            .WithName("ImportImage").WithTags("images")
            .WithDescription("Imports an OCI image layout directory or a `docker save` tar from the daemon's host; answers like a pull.")
            .Accepts<ImportImageRequest>("application/json")
            .Produces<Image>(200).Produces<Image>(201).Produces<Image>(202)
            .ProducesBoughProblems(400, 409, 422, 500, 502);

        images.MapPost("/build", Build)
            .WithName("BuildImage").WithTags("images")
            .WithDescription("Builds a built-in recipe (`debian-python`). An image already built under the name is returned (200); delete it to rebuild. Answers like a pull.")
            .Accepts<BuildImageRequest>("application/json")
            .Produces<Image>(200).Produces<Image>(201).Produces<Image>(202)
            .ProducesBoughProblems(400, 409, 500, 502);

        images.MapGet("/", List)
            .WithName("ListImages").WithTags("images")
            .WithDescription("`base` first, then published images, then those in progress (layers omitted).")
            .ProducesBoughProblems(500);

        images.MapGet("/{**name}", Get)
            .WithName("GetImage").WithTags("images")
            .WithDescription("One image. While pulling: state `pulling`, phase and layers; a failed pull: state `failed` and its error (kept about 10 minutes). Short names resolve as references (`busybox` → `docker.io/library/busybox:latest`).")
            .ProducesBoughProblems(404, 500);

        images.MapDelete("/{**name}", Delete)
            .WithName("DeleteImage").WithTags("images")
            .WithDescription("Deletes an image and its files. 409 image_in_use naming the sandboxes, snapshots and templates that use it; 409 for the built-in `base`.")
            .ProducesBoughProblems(404, 409, 500);
    }

    private static async Task<IResult> Pull(HttpContext ctx, [FromServices] IImageService images)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<PullImageRequest>(ctx.Request, ct);
        return Answer(await images.PullAsync(request, !ParseAsync(ctx.Request), ct));
    }

    private static async Task<IResult> Import(HttpContext ctx, [FromServices] IImageService images)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<ImportImageRequest>(ctx.Request, ct);
        return Answer(await images.ImportAsync(request, !ParseAsync(ctx.Request), ct));
    }

    private static async Task<IResult> Build(HttpContext ctx, [FromServices] IImageService images)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<BuildImageRequest>(ctx.Request, ct);
        return Answer(await images.BuildAsync(request, !ParseAsync(ctx.Request), ct));
    }

    private static async Task<Ok<IReadOnlyList<Image>>> List([FromServices] IImageService images, CancellationToken ct) =>
        TypedResults.Ok(await images.ListAsync(ct));

    private static async Task<Ok<Image>> Get(string name, [FromServices] IImageService images, CancellationToken ct) =>
        TypedResults.Ok(await images.GetAsync(DecodeName(name), ct));

    private static async Task<NoContent> Delete(string name, [FromServices] IImageService images, CancellationToken ct)
    {
        await images.DeleteAsync(DecodeName(name), ct);
        return TypedResults.NoContent();
    }

    private static IResult Answer(ImageAnswer answer) => answer.Outcome switch
    {
        ImageOutcome.Created => TypedResults.Created(Location(answer.Image.Name), answer.Image),
        ImageOutcome.Accepted => TypedResults.Accepted(Location(answer.Image.Name), answer.Image),
        _ => TypedResults.Ok(answer.Image),
    };

    /// <summary>Each segment escaped (':' and '@' too), so the Location works with any client.</summary>
    internal static string Location(string name) =>
        "/v1/images/" + string.Join('/', name.Split('/').Select(Uri.EscapeDataString));

    /// <summary>
    /// The catch-all value keeps <c>%2F</c> undecoded (the server only decodes what cannot
    /// change the path's structure), so a client that escaped the whole name still sends a name
    /// with '/' in it. Valid names contain no '%', so decoding once is unambiguous.
    /// </summary>
    internal static string DecodeName(string name) => Uri.UnescapeDataString(name);

    private static bool ParseAsync(HttpRequest request)
    {
        var values = request.Query["async"];
        if (values.Count > 1) throw BoughException.Invalid("query parameter 'async' was given more than once");
        var value = values.ToString();
        if (string.IsNullOrEmpty(value)) return false;
        return bool.TryParse(value, out var b) ? b : throw BoughException.Invalid($"query parameter 'async' must be true or false, got '{value}'");
    }
}
