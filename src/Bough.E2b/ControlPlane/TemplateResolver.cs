using Bough.Contracts;
using Bough.Engine;

namespace Bough.E2b.ControlPlane;

/// <summary>What an E2B <c>templateID</c> names in Bough: <c>base</c>, else a template, a snapshot (id or tag) or an image, in that order.</summary>
internal sealed class TemplateResolver(BaseTemplate baseTemplate, ITemplateService templates, ISnapshotService snapshots, IImageService images)
{
    /// <summary>A create request with exactly one of Template, Snapshot or Image set.</summary>
    public async Task<CreateSandboxRequest> ResolveAsync(string templateId, CancellationToken ct)
    {
        if (templateId == E2bNames.BaseTemplateId)
        {
            await baseTemplate.EnsureAsync(ct);
            return new CreateSandboxRequest { Template = E2bNames.BaseTemplateName };
        }
        if (await FoundAsync(() => templates.GetAsync(templateId, ct), ErrorCodes.TemplateNotFound))
            return new CreateSandboxRequest { Template = templateId };
        if (await FoundAsync(() => snapshots.GetSnapshotAsync(templateId, ct), ErrorCodes.SnapshotNotFound))
            return new CreateSandboxRequest { Snapshot = templateId };
        if (await FoundAsync(() => images.GetAsync(templateId, ct), ErrorCodes.ImageNotFound))
            return new CreateSandboxRequest { Image = templateId };
        throw E2bException.NotFound($"template '{templateId}' not found: it is no Bough template, snapshot or image");
    }

    private static async Task<bool> FoundAsync<T>(Func<Task<T>> lookup, string notFoundCode)
    {
        try
        {
            await lookup();
            return true;
        }
        catch (BoughException ex) when (ex.Code == notFoundCode || ex.Code == ErrorCodes.InvalidRequest)
        {
            return false;
        }
    }
}
