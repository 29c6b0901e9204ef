using Microsoft.AspNetCore.Http.Metadata;

namespace Bough.Server.Http;

/// <summary>
/// Endpoint metadata that routing applies to Kestrel's per-request body limit. Lets file
/// uploads exceed the 30 MB default without raising it for the JSON endpoints too.
/// </summary>
internal sealed class RequestSizeLimit(long? maxBytes) : IRequestSizeLimitMetadata
{
    public long? MaxRequestBodySize { get; } = maxBytes;
}
