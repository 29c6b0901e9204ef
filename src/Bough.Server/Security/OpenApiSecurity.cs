using Bough.Contracts;
using Bough.Server.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Bough.Server.Security;

/// <summary>
/// Declares the API token in the OpenAPI document: a bearer scheme and the equivalent
/// <c>X-API-Key</c> header, required by every operation but the health probe, each of which
/// also documents its 401 problem.
/// </summary>
internal static class OpenApiSecurity
{
    public const string BearerScheme = "bearer";
    public const string ApiKeyScheme = "apiKey";

    /// <summary>Operation name of the unauthenticated health probe (see SystemEndpoints).</summary>
    private const string HealthOperation = "Health";

    public static void Configure(OpenApiOptions options)
    {
        options.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Components ??= new OpenApiComponents();
            doc.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            doc.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "The daemon's API token (`<data dir>/api-token`; `bough token` prints it).",
            };
            doc.Components.SecuritySchemes[ApiKeyScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = ApiTokenMiddleware.ApiKeyHeader,
                Description = "The same token in the X-API-Key header.",
            };
            // Either scheme satisfies the document-wide requirement (two alternatives).
            doc.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, doc)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, doc)] = [] },
            ];
            return Task.CompletedTask;
        });

        options.AddOperationTransformer(async (op, ctx, ct) =>
        {
            if (op.OperationId == HealthOperation)
            {
                op.Security = []; // an empty requirement list: no token needed
                return;
            }
            op.Responses ??= new OpenApiResponses();
            if (op.Responses.ContainsKey("401"))
                return;
            var problem = await ctx.GetOrCreateSchemaAsync(typeof(Problem), null, ct);
            op.Responses["401"] = new OpenApiResponse
            {
                Description = "No API token, or not the daemon's (code `unauthorized`).",
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [ProblemWriter.ContentType] = new OpenApiMediaType { Schema = problem },
                },
            };
        });
    }
}
