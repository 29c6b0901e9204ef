using System.Net.Http.Json;
using Bough.Contracts;

namespace Bough.Integration.Tests;

internal static class Problems
{
    /// <summary>Plain web defaults, not the client's options: the test reads the wire as any caller would.</summary>
    private static readonly System.Text.Json.JsonSerializerOptions Web = new(System.Text.Json.JsonSerializerDefaults.Web);

    public static async Task<Problem> ReadAsync(HttpResponseMessage r)
    {
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var json = await r.Content.ReadAsStringAsync();
        var o = System.Text.Json.JsonSerializer.Deserialize<Problem>(json, Web);
        Assert.NotNull(o);
        Assert.False(string.IsNullOrEmpty(o!.Code), $"problem without a code: {json}");
        Assert.False(string.IsNullOrEmpty(o.Detail), $"problem without a detail: {json}");
        Assert.Equal((int)r.StatusCode, o.Status);
        return o;
    }

    public static Task<HttpResponseMessage> PostJsonTextAsync(HttpClient http, string url, string json) =>
        http.PostAsync(url, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
}
