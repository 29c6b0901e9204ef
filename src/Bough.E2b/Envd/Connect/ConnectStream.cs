using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bough.E2b.Envd.Connect;

/// <summary>The response side of a server-streaming call: headers on the first message, one flushed envelope per message.</summary>
internal sealed class ConnectStream(HttpContext http)
{
    public const string MediaType = "application/connect+json";

    public bool Started => http.Response.HasStarted;

    public async Task SendAsync(object message, CancellationToken ct)
    {
        await StartAsync(ct);
        await ConnectEnvelope.WriteAsync(http.Response, JsonSerializer.SerializeToUtf8Bytes(message, E2bJson.Options), end: false, ct);
    }

    /// <summary>The end-stream message, with the error if there was one. Errors stay in the body: the HTTP status is 200.</summary>
    public async Task EndAsync(ConnectError? error, CancellationToken ct)
    {
        await StartAsync(ct);
        await ConnectEnvelope.WriteEndAsync(http.Response, error, ct);
    }

    private async Task StartAsync(CancellationToken ct)
    {
        if (http.Response.HasStarted)
            return;
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = MediaType;
        http.Response.Headers.CacheControl = "no-store";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.StartAsync(ct);
    }
}
