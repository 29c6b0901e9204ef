using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/Connect</c>: reattaches to a running process (by pid or tag) and streams its
/// events, <c>start</c> first. As in envd (whose SDK 2.51 proto has no replay flag) only output
/// produced from now on is sent. The call's deadline ends this stream, not the process; leaving
/// only detaches. An unknown or exited process is <c>not_found</c>.
/// </summary>
internal sealed class ConnectMethod(IGuestProcesses processes) : IConnectStreamMethod
{
    public string Name => "process.Process/Connect";

    public async Task StreamAsync(ConnectCall call, ConnectStream stream)
    {
        var process = ProcessStreaming.ToRef(call.Read<SelectorRequest>().Process);
        var env = call.Request;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(call.Aborted);
        if (call.Deadline is { } d)
            deadline.CancelAfter(d);
        // The guest remembers a few exited processes (and would replay their end); envd forgets them at once.
        var listed = await processes.GetAsync(env.Id, process, call.Aborted);
        if (!listed.Running)
            throw new ConnectException(ConnectError.NotFound, $"process {listed.Pid} has exited");
        var attach = new ProcessAttach(Replay: false, Deadline: null, Keepalive: ProcessStreaming.KeepaliveInterval(env));
        try
        {
            await ProcessStreaming.PumpAsync(processes.AttachAsync(env.Id, process, attach, deadline.Token), stream, deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !call.Aborted.IsCancellationRequested)
        {
            throw new ConnectException(ConnectError.DeadlineExceeded, "the stream's deadline (Connect-Timeout-Ms) passed; the process runs on");
        }
    }
}
