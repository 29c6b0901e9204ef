using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// OCI images, archive imports and recipe builds, as the HTTP layer sees them. Operations on
/// one name are coalesced: a second request joins the first. Failures are
/// <see cref="BoughException"/>s (image_not_found 404, image_in_use 409, image_ref_not_found 404,
/// registry_unauthorized 403, registry_unavailable / image_corrupt / image_build_failed 502,
/// layer_rejected / image_unsupported 422, invalid_request 400).
/// </summary>
public interface IImageService
{
    /// <param name="wait">False: answer at once with the image in state "pulling" (poll <see cref="GetAsync"/>).</param>
    Task<ImageAnswer> PullAsync(PullImageRequest request, bool wait, CancellationToken ct);
    Task<ImageAnswer> ImportAsync(ImportImageRequest request, bool wait, CancellationToken ct);
    Task<ImageAnswer> BuildAsync(BuildImageRequest request, bool wait, CancellationToken ct);

    /// <summary>base first, then published images, then those in progress.</summary>
    Task<IReadOnlyList<Image>> ListAsync(CancellationToken ct);

    /// <summary>A published image, one in progress (state "pulling"), or one that failed recently (state "failed").</summary>
    Task<Image> GetAsync(string name, CancellationToken ct);

    Task DeleteAsync(string name, CancellationToken ct);
}

/// <summary>How a pull/import/build request was answered: 201, 200 or 202.</summary>
public enum ImageOutcome { Created, Existing, Accepted }

public sealed record ImageAnswer(Image Image, ImageOutcome Outcome);
