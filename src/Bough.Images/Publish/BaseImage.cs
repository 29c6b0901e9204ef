namespace Bough.Images.Publish;

/// <summary>
/// The built-in <c>base</c> image (see <see cref="BaseImageBuilder"/>). <see cref="DiskPath"/> is a qcow2 file that must only ever be used
/// read-only, as the backing file of per-sandbox overlays; it never changes once published (a rebuild
/// publishes a new directory), so overlays created from it stay valid.
/// </summary>
public sealed record BaseImage(string Name, string DiskPath, string InputHash, DateTimeOffset BuiltAt);
