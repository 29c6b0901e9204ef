using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// <c>filesystem.Filesystem/ListDir</c>: a directory's entries down to <c>depth</c> levels (proto
/// default 0 means 1, as the SDK sends at least 1), each with its absolute path.
/// </summary>
internal sealed class ListDirMethod(IGuestProcesses guest) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/ListDir";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<ListDirRequest>();
        var path = call.Request.Resolve(request.Path);
        var depth = request.Depth is null or 0 ? 1 : (int)Math.Min(request.Depth.Value, int.MaxValue);
        var entries = await guest.ListFilesAsync(call.Request.Id, path, depth, call.Aborted);
        return new ListDirResponse(entries
            .Select(e => EntryInfo.From(e, path.TrimEnd('/') + "/" + e.Name))
            .ToList());
    }
}
