using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary><c>process.Process/CloseStdin</c>: EOF on the process's stdin pipe, after all input already sent.</summary>
internal sealed class CloseStdinMethod(IGuestProcesses processes) : IConnectUnaryMethod
{
    public string Name => "process.Process/CloseStdin";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var process = ProcessStreaming.ToRef(call.Read<SelectorRequest>().Process);
        await processes.CloseStdinAsync(call.Request.Id, process, call.Aborted);
        return new EmptyResponse();
    }
}
