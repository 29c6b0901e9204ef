using Bough.Contracts;
using Bough.Engine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bough.E2b.ControlPlane;

/// <summary>
/// E2B's default template <c>base</c>: Debian with bash, coreutils and python3 (Bough's
/// <c>debian-python</c> recipe, debootstrap) and a <c>user</c> account with home
/// <c>/home/user</c>, captured as the Bough template <see cref="E2bNames.BaseTemplateName"/> so
/// sandboxes fork it instead of booting. Made on first use: the first create starts the work and
/// every create waits for it; progress goes to the daemon log. The work runs under the daemon's
/// lifetime, not a request's, so a client that gives up does not waste a half-done build.
/// </summary>
internal sealed class BaseTemplate(
    ITemplateService templates, IImageService images, IHostApplicationLifetime lifetime, ILogger<BaseTemplate> log)
{
    /// <summary>Adds the account the way E2B's image has it; the ready check runs until it exits 0, so once is enough.</summary>
    private static readonly List<string> AddUser =
        ["/bin/sh", "-c", "id -u user >/dev/null 2>&1 || useradd --create-home --shell /bin/bash user"];

    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private Task? _making;

    /// <summary>Returns once the template exists, making it if needed.</summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        if (await ExistsAsync(ct))
            return;
        Task making;
        lock (_lock)
        {
            if (_making is null || _making.IsFaulted || _making.IsCanceled)
                _making = Task.Run(() => MakeAsync(lifetime.ApplicationStopping), CancellationToken.None);
            making = _making;
        }
        try
        {
            await making.WaitAsync(ct);
        }
        catch (BoughException ex)
        {
            throw new E2bException(502, $"the E2B base template could not be made: {ex.Message}", ex);
        }
    }

    private async Task<bool> ExistsAsync(CancellationToken ct)
    {
        try
        {
            await templates.GetAsync(E2bNames.BaseTemplateName, ct);
            return true;
        }
        catch (BoughException ex) when (ex.Code == ErrorCodes.TemplateNotFound)
        {
            return false;
        }
    }

    private async Task MakeAsync(CancellationToken ct)
    {
        if (await ExistsAsync(ct))
            return;
        await EnsureImageAsync(ct);
        log.LogInformation("E2B base template: booting {Image} to add the account 'user' and capture template {Template}",
            E2bNames.BaseImageName, E2bNames.BaseTemplateName);
        try
        {
            await templates.CreateAsync(new CreateTemplateRequest
            {
                Name = E2bNames.BaseTemplateName,
                Image = E2bNames.BaseImageName,
                Ready = AddUser,
                ReadyTimeoutSeconds = 600,
            }, ct);
        }
        catch (BoughException ex) when (ex.Code == ErrorCodes.TemplateExists)
        {
            // Made meanwhile through Bough's own API: just as good.
        }
        log.LogInformation("E2B base template {Template} is ready", E2bNames.BaseTemplateName);
    }

    private async Task EnsureImageAsync(CancellationToken ct)
    {
        string? lastPhase = null;
        while (true)
        {
            Image image;
            try
            {
                image = await images.GetAsync(E2bNames.BaseImageName, ct);
            }
            catch (BoughException ex) when (ex.Code == ErrorCodes.ImageNotFound)
            {
                log.LogInformation("E2B base template: building image {Image} from recipe {Recipe} (debootstrap; minutes)",
                    E2bNames.BaseImageName, "debian-python");
                image = (await images.BuildAsync(new BuildImageRequest { Recipe = "debian-python", Name = E2bNames.BaseImageName },
                    wait: false, ct)).Image;
            }
            if (image.State == ImageStates.Ready)
                return;
            if (image.State == ImageStates.Failed)
                throw new BoughException(ErrorCodes.ImageBuildFailed,
                    $"image {E2bNames.BaseImageName}: {image.Error?.Detail ?? "the build failed"}");
            if (image.Phase != lastPhase)
            {
                lastPhase = image.Phase;
                log.LogInformation("E2B base template: image {Image} {Phase}", E2bNames.BaseImageName, image.Phase ?? image.State);
            }
            await Task.Delay(PollInterval, ct);
        }
    }
}
