using Bough.Contracts;

namespace Bough.Client;

public sealed partial class BoughClient
{
    /// <summary>How often <see cref="WaitForImageAsync"/> asks by default: often enough for a live progress bar, rare enough to cost nothing.</summary>
    public static readonly TimeSpan DefaultImagePollInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Pulls an OCI image by reference (<c>python:3.12-slim</c>, <c>localhost:5000/app@sha256:…</c>).
    /// Without <paramref name="async"/> the call returns once the image is ready (or throws the
    /// pull's error); with it, the daemon answers at once with the image in state <c>pulling</c>,
    /// to be followed with <see cref="WaitForImageAsync"/>. Pulling a name already being pulled
    /// joins that pull.
    /// </summary>
    public Task<Image> PullImageAsync(
        string reference, bool insecure = false, int? diskSizeMiB = null, bool async = false, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(reference);
        var request = new PullImageRequest { Ref = reference, Insecure = insecure ? true : null, DiskSizeMiB = diskSizeMiB };
        return PullImageAsync(request, async, ct);
    }

    /// <inheritdoc cref="PullImageAsync(string, bool, int?, bool, CancellationToken)"/>
    public Task<Image> PullImageAsync(PullImageRequest request, bool async = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Image>(HttpMethod.Post, WithAsync("v1/images", async), request, ct);
    }

    /// <summary>
    /// Imports an OCI image layout directory or a <c>docker save</c> tar. <see cref="ImportImageRequest.Path"/>
    /// is read by the daemon, so it must be a path on the daemon's host. Same waiting rules as a pull.
    /// </summary>
    public Task<Image> ImportImageAsync(ImportImageRequest request, bool async = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync<Image>(HttpMethod.Post, WithAsync("v1/images/import", async), request, ct);
    }

    /// <summary>Builds an image from one of the daemon's built-in recipes (e.g. <c>debian-python</c>). Same waiting rules as a pull.</summary>
    public Task<Image> BuildImageAsync(string recipe, string? name = null, bool async = false, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(recipe);
        var request = new BuildImageRequest { Recipe = recipe, Name = name };
        return SendJsonAsync<Image>(HttpMethod.Post, WithAsync("v1/images/build", async), request, ct);
    }

    /// <summary>All images: the base image first, then ready and in-progress ones (without layer details).</summary>
    public Task<IReadOnlyList<Image>> ListImagesAsync(CancellationToken ct = default) =>
        GetJsonAsync<IReadOnlyList<Image>>("v1/images", ct);

    /// <summary>One image by name; while it is being pulled, its phase and per-layer progress.</summary>
    public Task<Image> GetImageAsync(string name, CancellationToken ct = default) =>
        GetJsonAsync<Image>(ImagePath(name), ct);

    /// <summary>Deletes an image; 409 image_in_use while sandboxes, snapshots or templates use it.</summary>
    public async Task DeleteImageAsync(string name, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, Url(ImagePath(name)));
        using var _ = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Polls an image until it is ready and returns it, reporting every answer (phase, layers) to
    /// <paramref name="progress"/> as it comes. A failed pull is thrown as <see cref="BoughApiException"/>
    /// with the pull's own error code (and Status 0: the poll itself succeeded). Cancelling stops
    /// the polling, not the pull: the daemon carries on with it.
    /// </summary>
    public async Task<Image> WaitForImageAsync(
        string name, IProgress<Image>? progress = null, TimeSpan? pollInterval = null, CancellationToken ct = default)
    {
        var interval = pollInterval ?? DefaultImagePollInterval;
        while (true)
        {
            var image = await GetImageAsync(name, ct).ConfigureAwait(false);
            progress?.Report(image);
            switch (image.State)
            {
                case ImageStates.Ready:
                    return image;
                case ImageStates.Failed:
                    throw FailedImage(image);
            }
            await Task.Delay(interval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The exception a failed image's recorded error stands for, as if the synchronous call had thrown it.</summary>
    public static BoughApiException FailedImage(Image image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return image.Error is { } error
            ? new BoughApiException(0, error.Code, null, error.Detail)
            : new BoughApiException(0, ErrorCodes.Internal, null, $"preparing image {image.Name} failed (the daemon gave no reason)");
    }

    private static string WithAsync(string path, bool async) => async ? path + "?async=true" : path;

    /// <summary>
    /// Image names contain '/', ':' and '@' (<c>ghcr.io/org/app@sha256:…</c>). Each '/'-separated
    /// segment is escaped on its own, so the daemon's catch-all route sees the slashes as
    /// slashes and every other reserved character decoded.
    /// </summary>
    internal static string ImagePath(string name) => "v1/images/" + EscapeSegments(name, "image");

    private static string EscapeSegments(string name, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var segments = name.Split('/');
        foreach (var segment in segments)
        {
            // "a//b", "./x" and "x/.." would be collapsed by URI normalisation and so name a
            // different resource than the caller meant (even `base`): refuse them here.
            if (segment is "" or "." or "..")
                throw new BoughApiException(0, ErrorCodes.InvalidRequest, null,
                    $"invalid {what} name '{name}': empty, '.' and '..' path segments are not allowed");
        }
        return string.Join('/', segments.Select(Uri.EscapeDataString));
    }
}
