using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Filesystem;

/// <summary>
/// <c>filesystem.Filesystem/MakeDir</c>: mkdir -p. An existing directory is <c>already_exists</c>
/// (the SDK's <c>makeDir</c> then returns false). The guest's agent creates directories as root;
/// for any other user every directory this call created is then given to that user (owner and
/// its group), as envd creates them as the user.
/// </summary>
internal sealed class MakeDirMethod(IGuestProcesses guest, ISandboxService sandboxes) : IConnectUnaryMethod
{
    public string Name => "filesystem.Filesystem/MakeDir";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var env = call.Request;
        var ct = call.Aborted;
        var path = env.Resolve(call.Read<PathRequest>().Path).TrimEnd('/');
        if (path.Length == 0)
            throw new ConnectException(ConnectError.AlreadyExists, "/ already exists");
        var missing = env.User is null or "root" or "0" ? [] : await MissingDirectories.FindAsync(guest, env.Id, path, ct);
        if (!await guest.MkdirAsync(env.Id, path, ct))
            throw new ConnectException(ConnectError.AlreadyExists, $"directory {path} already exists");
        if (missing.Count > 0)
        {
            var result = await sandboxes.ExecAsync(env.Id,
                new ExecCommand(["chown", "--no-dereference", env.User + ":", "--", .. missing], User: "root"), ct);
            if (result.ExitCode != 0)
                throw new ConnectException(ConnectError.PermissionDenied, $"cannot give {path} to user '{env.User}': {result.Stderr.Trim()}");
        }
        return new EntryResponse(EntryInfo.From(await guest.StatAsync(env.Id, path, ct), path));
    }
}
