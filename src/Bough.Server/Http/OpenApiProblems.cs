using Bough.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Bough.Server.Http;

internal static class OpenApiProblems
{
    /// <summary>Documents error statuses with Bough's own problem schema (which has <c>code</c>).</summary>
    public static TBuilder ProducesBoughProblems<TBuilder>(this TBuilder builder, params int[] statuses)
        where TBuilder : IEndpointConventionBuilder
    {
        foreach (var status in statuses)
            builder.WithMetadata(new ProducesResponseTypeMetadata(status, typeof(Problem), [ProblemWriter.ContentType]));
        return builder;
    }
}
