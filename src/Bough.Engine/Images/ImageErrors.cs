using Bough.Contracts;
using Bough.HostSetup;
using Bough.Images.Oci;

namespace Bough.Engine.Images;

/// <summary>Maps the image pipeline's failures to API errors; anything unexpected is a failed build, not a 500.</summary>
internal static class ImageErrors
{
    public static BoughException Translate(Exception ex) => ex switch
    {
        BoughException b => b,
        ImageException { Code: var code } ie => new BoughException(KnownCode(code), ie.Message, ie),
        SetupException s => new BoughException(ErrorCodes.ImageBuildFailed, s.Message, s),
        OperationCanceledException => new BoughException(ErrorCodes.ImageBuildFailed, "the operation was cancelled (daemon stopping or every client gave up)", ex),
        _ => new BoughException(ErrorCodes.ImageBuildFailed, $"{ex.GetType().Name}: {ex.Message}", ex),
    };

    public static BoughException NotFound(string name) =>
        new(ErrorCodes.ImageNotFound, $"no image named '{name}'; pull it first: bough pull {name}");

    private static string KnownCode(string code) => code switch
    {
        ErrorCodes.ImageRefNotFound or ErrorCodes.RegistryUnauthorized or ErrorCodes.RegistryUnavailable
            or ErrorCodes.ImageCorrupt or ErrorCodes.LayerRejected or ErrorCodes.ImageUnsupported
            or ErrorCodes.ImageBuildFailed or ErrorCodes.InvalidRequest or ErrorCodes.PermissionDenied => code,
        _ => ErrorCodes.ImageBuildFailed,
    };
}
