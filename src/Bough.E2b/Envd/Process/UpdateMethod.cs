using Bough.Contracts;
using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/Update</c>: resizes a terminal process's terminal (the SDK's <c>pty.resize</c>);
/// the process gets SIGWINCH. Without <c>pty</c> there is nothing to change, as in envd.
/// </summary>
internal sealed class UpdateMethod(IGuestProcesses processes) : IConnectUnaryMethod
{
    public string Name => "process.Process/Update";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<UpdateRequest>();
        var process = ProcessStreaming.ToRef(request.Process);
        if (request.Pty is { Size: { } size })
        {
            var terminal = new TerminalSize((int)Math.Min(size.Cols, int.MaxValue), (int)Math.Min(size.Rows, int.MaxValue));
            await processes.ResizeAsync(call.Request.Id, process, terminal, call.Aborted);
        }
        return new EmptyResponse();
    }
}
