using System.Text.RegularExpressions;

namespace Bough.Images.Oci;

/// <summary>
/// Docker's reference grammar (distribution/reference): <c>[registry/]path[:tag][@digest]</c>. The first
/// path component is a registry only when it looks like a host (has a '.' or ':' or is
/// <c>localhost</c>) and more components follow; otherwise the registry is docker.io, where a single
/// component is an official image under <c>library/</c>.
/// </summary>
internal static partial class ImageReferenceParser
{
    private const int MaxNameLength = 255;

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex PathComponent();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")]
    private static partial Regex HostPattern();

    public static ImageReference Parse(string reference)
    {
        if (string.IsNullOrWhiteSpace(reference))
            throw Invalid(reference, "it is empty");
        if (reference != reference.Trim() || reference.Any(char.IsWhiteSpace))
            throw Invalid(reference, "it contains whitespace");

        var rest = reference;
        string? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (!Digests.IsValid(digest))
                throw Invalid(reference, $"the digest '{digest}' is not sha256:<64 lowercase hex>");
        }

        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/'))
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagPattern().IsMatch(tag))
                throw Invalid(reference, $"the tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')");
        }
        if (rest.Length == 0)
            throw Invalid(reference, "the repository name is empty");

        var parts = rest.Split('/');
        string registry;
        if (parts.Length > 1 && (parts[0].Contains('.') || parts[0].Contains(':') || parts[0] == "localhost"))
        {
            registry = parts[0];
            if (!HostPattern().IsMatch(registry))
                throw Invalid(reference, $"the registry host '{registry}' is not a valid host[:port]");
            parts = parts[1..];
        }
        else
        {
            registry = "docker.io";
        }
        if (registry is "index.docker.io" or "registry-1.docker.io") registry = "docker.io";

        foreach (var p in parts)
        {
            if (p.Length == 0)
                throw Invalid(reference, "the repository has an empty path component");
            if (p.Any(char.IsUpper))
                throw Invalid(reference, "repository names must be lowercase");
            if (!PathComponent().IsMatch(p))
                throw Invalid(reference, $"the repository component '{p}' is not valid (lowercase letters and digits, separated by '.', '_', '__' or '-')");
        }
        var repository = string.Join('/', parts);
        if (registry == "docker.io" && parts.Length == 1) repository = "library/" + repository;
        if (registry.Length + 1 + repository.Length > MaxNameLength)
            throw Invalid(reference, $"the name is longer than {MaxNameLength} characters");

        if (tag is null && digest is null) tag = "latest";
        return new ImageReference(registry, repository, tag, digest);
    }

    private static ImageException Invalid(string? reference, string why) =>
        new("invalid_request", $"invalid image reference '{reference}': {why}");
}
