using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// Templates: a sandbox booted from an image, its start command running and its ready check
/// passing, captured once; new sandboxes fork that capture instead of booting. Failures are
/// <see cref="BoughException"/>s (template_not_found 404, template_exists / template_in_use 409,
/// template_not_ready 422, image_not_found 404).
/// </summary>
public interface ITemplateService
{
    /// <summary>Boots, starts, waits for ready, snapshots; answers once the template can be used.</summary>
    Task<Template> CreateAsync(CreateTemplateRequest request, CancellationToken ct);
    Task<IReadOnlyList<Template>> ListAsync(CancellationToken ct);
    Task<Template> GetAsync(string name, CancellationToken ct);

    /// <summary>409 template_in_use while sandboxes created from it exist; removes the row, then its snapshot.</summary>
    Task DeleteAsync(string name, CancellationToken ct);

    /// <summary>POST /v1/sandboxes with "template": Count (default 1) forks of the template's snapshot.</summary>
    Task<IReadOnlyList<Sandbox>> CreateSandboxesAsync(CreateSandboxRequest request, CancellationToken ct);
}
