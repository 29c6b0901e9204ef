using Bough.Agent.Processes;
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
        Ops.List => ListOperation.RunAsync(request, stream, state),
        Ops.Stat => Task.FromResult(FileOperations.Stat(request, state)),
        Ops.Mkdir => Task.FromResult(FileOperations.Mkdir(request)),
        Ops.Remove => Task.FromResult(FileOperations.Remove(request)),
        Ops.Move => Task.FromResult(FileOperations.Move(request, state)),
        Ops.Watch => WatchOperation.RunAsync(request, stream),
        Ops.ProcStart => ProcessOperations.StartAsync(request, stream, state),
        Ops.ProcAttach => ProcessOperations.AttachAsync(request, stream, state),
        Ops.ProcList => ProcessOperations.ListAsync(request, stream, state),
        Ops.ProcInput => ProcessOperations.InputAsync(request, stream, state),
        Ops.ProcCloseStdin => Task.FromResult(ProcessOperations.CloseStdin(request, state)),
        Ops.ProcSignal => Task.FromResult(ProcessOperations.Signal(request, state)),
        Ops.ProcResize => Task.FromResult(ProcessOperations.Resize(request, state)),
        _ => Task.FromResult(Session.Error(ErrorCodes.Unsupported, $"unknown operation '{request.Op}'")),
    };
}
