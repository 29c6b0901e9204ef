using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;

namespace Bough.Server.Http;

/// <summary>Checks the HTTP shape of the <c>path</c> query parameter; the engine decides what the path may name.</summary>
internal static class GuestPath
{
    /// <param name="path">The bound parameter (it is what documents <c>path</c> in OpenAPI).</param>
    /// <param name="request">
    /// Consulted for repeats: binding joins <c>?path=/a&amp;path=/b</c> into "/a,/b", which would
    /// otherwise reach the engine as one bogus path.
    /// </param>
    public static string Require(string? path, HttpRequest request)
    {
        if (request.Query["path"].Count > 1)
            throw new BoughException(ErrorCodes.InvalidPath, "query parameter 'path' was given more than once");
        if (string.IsNullOrEmpty(path))
            throw new BoughException(ErrorCodes.InvalidPath, "query parameter 'path' is required (an absolute guest path, e.g. ?path=/tmp/file)");
        if (path[0] != '/')
            throw new BoughException(ErrorCodes.InvalidPath, $"query parameter 'path' must be an absolute guest path starting with '/', got '{path}'");
        return path;
    }
}
