using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Bough.Server.Endpoints;

/// <summary>Templates: a booted, started and ready sandbox captured once; sandboxes fork it (POST /v1/sandboxes {template}).</summary>
internal static class TemplatesEndpoints
{
    public static void MapTemplatesEndpoints(this IEndpointRouteBuilder app)
    {
        var templates = app.MapGroup("/v1/templates");

        templates.MapPost("/", Create)
            .WithName("CreateTemplate").WithTags("templates")
            .WithDescription("Boots `image`, runs `start` detached (output in /var/log/bough-template-start.log), runs `ready` every ~200 ms until it exits 0 (within readyTimeoutSeconds, default 120), then snapshots the sandbox. Waits until done. 422 template_not_ready carries the ready output, the start log and the console tail.")
            .Accepts<CreateTemplateRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 422, 500, 502, 503);

        templates.MapGet("/", List)
            .WithName("ListTemplates").WithTags("templates")
            .ProducesBoughProblems(500);

        templates.MapGet("/{name}", Get)
            .WithName("GetTemplate").WithTags("templates")
            .ProducesBoughProblems(404, 500);

        templates.MapDelete("/{name}", Delete)
            .WithName("DeleteTemplate").WithTags("templates")
            .WithDescription("Deletes the template and its snapshot; 409 template_in_use while sandboxes created from it exist.")
            .ProducesBoughProblems(404, 409, 500);
    }

    private static async Task<Created<Template>> Create(HttpContext ctx, [FromServices] ITemplateService templates)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<CreateTemplateRequest>(ctx.Request, ct);
        var template = await templates.CreateAsync(request, ct);
        return TypedResults.Created($"/v1/templates/{Uri.EscapeDataString(template.Name)}", template);
    }

    private static async Task<Ok<IReadOnlyList<Template>>> List([FromServices] ITemplateService templates, CancellationToken ct) =>
        TypedResults.Ok(await templates.ListAsync(ct));

    private static async Task<Ok<Template>> Get(string name, [FromServices] ITemplateService templates, CancellationToken ct) =>
        TypedResults.Ok(await templates.GetAsync(name, ct));

    private static async Task<NoContent> Delete(string name, [FromServices] ITemplateService templates, CancellationToken ct)
    {
        await templates.DeleteAsync(name, ct);
        return TypedResults.NoContent();
    }
}
