using System.Text;
using Bough.Agent.Operations;

namespace Bough.Agent.Native;

/// <summary>
/// Stops the guest's legacy PIT (Native/pit-off.c says why and how): without this, QEMU wakes 36 times a
/// second in every idle VM to emulate a timer nothing uses. Run once when the agent starts inside a VM,
/// before the first capture, so every snapshot and every child carries the stopped timer. Only run when the
/// agent found its virtio port by name, which only a Bough VM has: never with <c>--device</c> or
/// <c>--listen-unix</c> (tests on a host), where the helper would reprogram the host's own PIT.
/// </summary>
internal static unsafe class LegacyTimer
{
    /// <summary>Runs the helper and waits for it; a failure is logged, never fatal (the VM only stays noisier).</summary>
    public static void Stop(AgentLog log)
    {
        SpawnedProcess? spawned;
        int errno;
        try
        {
            var path = new EmbeddedExecutable("pit-off").Path();
            spawned = ProcessSpawner.Spawn(path, [path], [], "/", withStdin: false, out errno);
        }
        catch (AgentError e)
        {
            log.Warn($"legacy timer left running: {e.Message}");
            return;
        }
        if (spawned is null)
        {
            log.Warn($"legacy timer left running: spawning pit-off failed with errno {errno}");
            return;
        }
        int status;
        while (Libc.waitpid(spawned.Pid, &status, 0) < 0 && Libc.Errno == Libc.EINTR) { }
        // The helper has exited, so whatever it wrote is in the pipe already (a few bytes; the read end is non-blocking).
        var said = ReadAll(spawned.StderrRead).Trim();
        Libc.close(spawned.StdoutRead);
        Libc.close(spawned.StderrRead);
        bool exitedZero = (status & 0x7f) == 0 && ((status >> 8) & 0xff) == 0;
        if (exitedZero) log.Debug("legacy timer (PIT channel 0) stopped");
        else log.Warn($"legacy timer left running: pit-off exited with status {status}{(said.Length > 0 ? ": " + said : "")}");
    }

    private static string ReadAll(int fd)
    {
        var buffer = new byte[512];
        var text = new StringBuilder();
        fixed (byte* p = buffer)
        {
            nint n;
            while ((n = Libc.read(fd, p, buffer.Length)) > 0) text.Append(Encoding.UTF8.GetString(buffer, 0, (int)n));
        }
        return text.ToString();
    }
}
