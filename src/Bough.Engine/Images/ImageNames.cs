using System.Text.RegularExpressions;
using Bough.Images.Oci;

namespace Bough.Engine.Images;

/// <summary>Image names as requests give them: validation, reference parsing, and the names a lookup tries.</summary>
internal static partial class ImageNames
{
    /// <summary>The name as given, then as a normalised reference (<c>busybox</c> → <c>docker.io/library/busybox:latest</c>).</summary>
    public static IEnumerable<string> Candidates(string name)
    {
        yield return name;
        string? normalised = null;
        try { normalised = ImageReference.Parse(name).ToString(); }
        catch (ImageException) { }
        catch (ArgumentException) { }
        if (normalised is not null && normalised != name) yield return normalised;
    }

    public static ImageReference ParseReference(string reference)
    {
        try { return ImageReference.Parse(reference); }
        catch (ImageException ex) { throw ImageErrors.Translate(ex); }
    }

    /// <summary>A name chosen by the caller (import, recipe): letters, digits and a few separators, never <c>..</c>.</summary>
    public static void Validate(string name)
    {
        if (!NamePattern().IsMatch(name) || name.Contains("..", StringComparison.Ordinal))
            throw BoughException.Invalid($"image name '{name}' is not valid: 1-255 characters of letters, digits and . _ - / : @ +, starting with a letter or digit");
    }

    /// <summary>The requested disk size in bytes (null: the builder's default).</summary>
    public static long? DiskSize(int? mib)
    {
        if (mib is null) return null;
        if (mib is < 64 or > 1024 * 1024) throw BoughException.Invalid($"diskSizeMiB must be between 64 and {1024 * 1024} (got {mib})");
        return (long)mib.Value << 20;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")]
    private static partial Regex NamePattern();
}
