using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary><c>filesystem.Filesystem/Move</c>: rename(2) in the guest; the answer is the entry at its new place.</summary>
internal sealed class MoveMethod(IGuestProcesses guest) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/Move";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<MoveRequest>();
        var source = call.Request.Resolve(request.Source);
        var destination = call.Request.Resolve(request.Destination);
        var entry = await guest.MoveAsync(call.Request.Id, source, destination, call.Aborted);
        return new EntryResponse(EntryInfo.From(entry, destination));
    }
}
