using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// <c>filesystem.Filesystem/Remove</c>: a file, symlink or whole directory tree. A missing path is
/// <c>not_found</c> (the SDK's FileNotFoundError).
/// </summary>
internal sealed class RemoveMethod(ISandboxService sandboxes) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/Remove";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var path = call.Request.Resolve(call.Read<PathRequest>().Path);
        await sandboxes.DeleteFileAsync(call.Request.Id, path, call.Aborted);
        return new EmptyResponse();
    }
}
