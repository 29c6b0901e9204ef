using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// <c>filesystem.Filesystem/Stat</c>: a path's entry (symlinks not followed); relative paths start
/// at the user's home. A missing path is <c>not_found</c>, which the SDK's <c>exists()</c> reads as false.
/// </summary>
internal sealed class StatMethod(IGuestProcesses guest) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/Stat";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var path = call.Request.Resolve(call.Read<PathRequest>().Path);
        var entry = await guest.StatAsync(call.Request.Id, path, call.Aborted);
        return new EntryResponse(EntryInfo.From(entry, path));
    }
}
