using System.Text.Json;
using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/SendSignal</c>: SIGKILL or SIGTERM (the two the proto's <c>Signal</c> enum
/// has) to the process's group. An unknown or exited process is <c>not_found</c>, which the SDK's
/// <c>kill()</c> turns into <c>false</c>.
/// </summary>
internal sealed class SendSignalMethod(IGuestProcesses processes) : IConnectUnaryMethod
{
    private const int SigKill = 9, SigTerm = 15;

    public string Name => "process.Process/SendSignal";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var request = call.Read<SendSignalRequest>();
        var process = ProcessStreaming.ToRef(request.Process);
        var signal = ToSignal(request.Signal);
        await processes.SignalAsync(call.Request.Id, process, signal, call.Aborted);
        return new EmptyResponse();
    }

    /// <summary>The enum by name or number; SIGNAL_UNSPECIFIED (or none) is refused as envd does.</summary>
    private static int ToSignal(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() switch
        {
            "SIGNAL_SIGKILL" => SigKill,
            "SIGNAL_SIGTERM" => SigTerm,
            var other => throw new ConnectException(ConnectError.InvalidArgument, $"unsupported signal '{other}'"),
        },
        JsonValueKind.Number when value.TryGetInt32(out var n) && n is SigKill or SigTerm => n,
        _ => throw new ConnectException(ConnectError.InvalidArgument, "field 'signal' must be SIGNAL_SIGKILL or SIGNAL_SIGTERM"),
    };
}
