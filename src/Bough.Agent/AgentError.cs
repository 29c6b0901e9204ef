using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent;

/// <summary>An operation failure that is reported to the host as END {error:{code,message}}.</summary>
internal sealed class AgentError(string code, string message) : Exception(message)
{
    public string Code { get; } = code;

    /// <summary>Maps an errno to the stable protocol error codes so the host never has to parse messages.</summary>
    public static AgentError FromErrno(int errno, string what, string path)
    {
        string code = errno switch
        {
            Libc.ENOENT => ErrorCodes.FileNotFound,
            Libc.ENOTDIR => ErrorCodes.NotADirectory,
            Libc.EISDIR => ErrorCodes.IsADirectory,
            Libc.EACCES or Libc.EPERM => ErrorCodes.PermissionDenied,
            Libc.EEXIST => ErrorCodes.AlreadyExists,
            Libc.ENAMETOOLONG => ErrorCodes.InvalidPath,
            _ => ErrorCodes.IoError,
        };
        return new AgentError(code, $"{what} {path}: {Libc.StrError(errno)}");
    }

    public static void RequireAbsolute(string? path, string field = "path")
    {
        if (!ProtocolPaths.IsValidAbsolute(path))
            throw new AgentError(ErrorCodes.InvalidPath, $"{field} must be an absolute path, got '{path}'");
    }
}
