using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Bough.Images.Oci;

/// <summary>
/// Content digests. Only sha256 is accepted: it is what every registry and the OCI spec's
/// "MUST support" list use, and supporting one algorithm keeps the blob store a single flat folder.
/// </summary>
internal static partial class Digests
{
    [GeneratedRegex("^sha256:[a-f0-9]{64}$")]
    private static partial Regex Sha256Pattern();

    public static bool IsValid(string? digest) => digest is not null && Sha256Pattern().IsMatch(digest);

    /// <summary>The hex part of a validated digest; throws <see cref="ImageException"/> otherwise.</summary>
    public static string Hex(string digest)
    {
        Require(digest, "digest");
        return digest["sha256:".Length..];
    }

    public static void Require(string? digest, string what)
    {
        if (!IsValid(digest))
            throw new ImageException("image_unsupported",
                $"{what} '{digest}' is not a sha256 digest (sha256:<64 lowercase hex>); other algorithms are not supported");
    }

    public static string Of(ReadOnlySpan<byte> data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
}
