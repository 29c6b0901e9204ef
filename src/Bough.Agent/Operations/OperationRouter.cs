using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>Maps an OPEN request to its handler; every handler returns the END message.</summary>
internal static class OperationRouter
{
    public static Task<EndMessage> RunAsync(OpenRequest request, AgentStream stream, AgentState state) => request.Op switch
    {
        Ops.Health => Task.FromResult(SystemOperations.Health(state)),
        Ops.Configure => Task.FromResult(SystemOperations.Configure(request.Configure, state)),
        Ops.Exec => ExecOperation.RunAsync(request.Exec ?? throw new AgentError(ErrorCodes.BadRequest, "exec arguments missing"), stream, state),
        Ops.Write => FileOperations.WriteAsync(request, stream),
        Ops.Read => FileOperations.ReadAsync(request, stream),
        Ops.List => FileOperations.ListAsync(request, stream, state.MaxListEntries),
        Ops.Stat => Task.FromResult(FileOperations.Stat(request)),
        Ops.Mkdir => Task.FromResult(FileOperations.Mkdir(request)),
        Ops.Remove => Task.FromResult(FileOperations.Remove(request)),
        _ => Task.FromResult(Session.Error(ErrorCodes.Unsupported, $"unknown operation '{request.Op}'")),
    };
}
