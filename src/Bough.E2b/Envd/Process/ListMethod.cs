using Bough.E2b.Envd.Connect;
using Bough.Engine;

namespace Bough.E2b.Envd.Process;

/// <summary>
/// <c>process.Process/List</c>: the running processes of the guest's table (exited ones are left
/// out, as envd forgets a process once it ends). <c>config</c> is what the start asked for: argv
/// split into <c>cmd</c> and <c>args</c>, the environment it added, its working directory.
/// </summary>
internal sealed class ListMethod(IGuestProcesses processes) : IConnectUnaryMethod
{
    public string Name => "process.Process/List";

    public async Task<object> CallAsync(ConnectCall call)
    {
        var listed = await processes.ListAsync(call.Request.Id, includeExited: false, call.Aborted);
        return new ListResponse(listed
            .Where(p => p.Running && p.Pid > 0)
            .Select(p => new ProcessInfo(
                new ProcessInfoConfig(
                    p.Cmd.Count > 0 ? p.Cmd[0] : "",
                    p.Cmd.Skip(1).ToList(),
                    p.Env ?? new Dictionary<string, string>(),
                    p.Cwd),
                (uint)p.Pid,
                p.Tag))
            .ToList());
    }
}
