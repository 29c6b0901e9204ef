using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
    /// <summary>
    /// Makes a template: boots the image, runs its start command, waits for its ready command to
    /// succeed, then snapshots the sandbox. Returns once the template is ready (this takes as
    /// long as boot + start + ready); 422/504 template_not_ready carries the console and start-log tails.
    /// </summary>
    public Task<Template> CreateTemplateAsync(CreateTemplateRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Template>(HttpMethod.Post, "v1/templates", request, ct);
    }

    public Task<IReadOnlyList<Template>> ListTemplatesAsync(CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<Template>>("v1/templates", ct);

    public Task<Template> GetTemplateAsync(string name, CancellationToken ct = default) =>
        GetJsonAsync<Template>(TemplatePath(name), ct);

    /// <summary>Deletes a template; 409 template_in_use while sandboxes created from it exist.</summary>
    public async Task DeleteTemplateAsync(string name, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(TemplatePath(name)));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>Template names are one path segment; a '/' in one is escaped so it cannot reach another route.</summary>
    private static string TemplatePath(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name is "." or "..")
            throw new BoughApiException(0, ErrorCodes.InvalidRequest, null, $"invalid template name '{name}'");
        return "v1/templates/" + Uri.EscapeDataString(name);
    }
}
