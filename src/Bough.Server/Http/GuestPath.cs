using Bough.Contracts;
using Bough.Engine;

namespace Bough.Server.Http;

/// <summary>Checks the HTTP shape of the <c>path</c> query parameter; the engine decides what the path may name.</summary>
internal static class GuestPath
{
    public static string Require(string? path)
    {
        if (string.IsNullOrEmpty(path))
            throw new BoughException(ErrorCodes.InvalidPath, "query parameter 'path' is required (an absolute guest path, e.g. ?path=/tmp/file)");
        if (path[0] != '/')
            throw new BoughException(ErrorCodes.InvalidPath, $"query parameter 'path' must be an absolute guest path starting with '/', got '{path}'");
        return path;
    }
}
