using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/SendInput</c>: bytes for a process's stdin pipe (<c>input.stdin</c>) or its
/// terminal (<c>input.pty</c>). Returns once the guest's pipe took them, so a following CloseStdin
/// cannot overtake them. A process started without stdin, or one that has exited, is refused by
/// the engine with the matching code.
/// </summary>
internal sealed class SendInputMethod(IGuestProcesses processes) : IConnectUnaryMethod
{
    public string Name => "process.Process/SendInput";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<SendInputRequest>();
        var process = ProcessStreaming.ToRef(request.Process);
        var bytes = request.Input switch
        {
            { Stdin: { } stdin } => stdin,
            { Pty: { } pty } => pty,
            _ => throw new ConnectException(ConnectError.InvalidArgument, "field 'input' must carry 'stdin' or 'pty' bytes"),
        };
        if (bytes.Length > 0)
        {
            using var input = new MemoryStream(bytes, writable: false);
            await processes.SendInputAsync(call.Request.Id, process, input, call.Aborted);
        }
        return new EmptyResponse();
    }
}
