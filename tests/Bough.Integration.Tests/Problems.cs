using System.Net.Http.Json;
using Bough.Contracts;

namespace Bough.Integration.Tests;

internal static class Problems
{
    public static async Task<Problem> ReadAsync(HttpResponseMessage r)
    {
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var json = await r.Content.ReadAsStringAsync();
        var o = System.Text.Json.JsonSerializer.Deserialize<Problem>(json,
            new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        Assert.NotNull(o);
        Assert.False(string.IsNullOrEmpty(o!.Code), $"problem without a code: {json}");
        Assert.False(string.IsNullOrEmpty(o.Detail), $"problem without a detail: {json}");
        Assert.Equal((int)r.StatusCode, o.Status);
        return o;
    }

    public static Task<HttpResponseMessage> PostJsonTextAsync(HttpClient http, string url, string json) =>
        http.PostAsync(url, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
}
