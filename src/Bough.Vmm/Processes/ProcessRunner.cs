using System.ComponentModel;
using System.Diagnostics;

namespace Bough.Vmm;

/// <summary>What a finished process returned.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Exit code 0.</summary>
    public bool Succeeded => ExitCode == 0;
}

/// <summary>Options for <see cref="ProcessRunner.RunAsync(string, IReadOnlyList{string}, ProcessRunOptions, CancellationToken)"/>.</summary>
public sealed record ProcessRunOptions
{
    /// <summary>Working directory of the process; null = the current one.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// The process tree is killed and <see cref="TimeoutException"/> thrown when this elapses; null waits for
    /// as long as the cancellation token allows.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// How long to keep reading stdout/stderr after the process exited. A process that leaves a child behind
    /// (QEMU's <c>-daemonize</c>) can hand it the pipes; their end of file may then never come, and the output
    /// read so far is what is returned.
    /// </summary>
    public TimeSpan OutputDrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Runs host tools (qemu-img, the QEMU launcher). Arguments are a list, never a shell string, so paths with
/// spaces or quotes are safe; stdin is closed; <c>LC_ALL=C</c> keeps the messages we quote predictable.
/// Cancellation kills the whole process tree, so nothing keeps running behind a cancelled operation.
/// </summary>
public static class ProcessRunner
{
    /// <summary>Runs <paramref name="fileName"/> to completion and returns its exit code and output.</summary>
    /// <exception cref="IOException">The executable could not be started (missing, not executable).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> fired; the process tree was killed.</exception>
    public static Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken ct) =>
        RunAsync(fileName, arguments, new ProcessRunOptions(), ct);

    /// <inheritdoc cref="RunAsync(string, IReadOnlyList{string}, CancellationToken)"/>
    /// <exception cref="TimeoutException"><see cref="ProcessRunOptions.Timeout"/> elapsed; the process tree was killed.</exception>
    public static async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments,
        ProcessRunOptions options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(fileName);
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(options);
        ct.ThrowIfCancellationRequested();
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = options.WorkingDirectory ?? "",
        };
        foreach (string a in arguments) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new IOException($"Could not start '{fileName}': {e.Message}", e);
        }
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);

        using var timeout = options.Timeout is { } t ? new CancellationTokenSource(t) : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            string err = await DrainAsync(stderr, options.OutputDrainTimeout).ConfigureAwait(false);
            throw new TimeoutException($"'{fileName}' did not finish within {options.Timeout}; killed. stderr: {err.Trim()}");
        }
        return new ProcessResult(process.ExitCode,
            await DrainAsync(stdout, options.OutputDrainTimeout).ConfigureAwait(false),
            await DrainAsync(stderr, options.OutputDrainTimeout).ConfigureAwait(false));
    }

    private static async Task<string> DrainAsync(Task<string> read, TimeSpan limit)
    {
        try
        {
            return await read.WaitAsync(limit).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return "";
        }
    }

    /// <summary>Kills the process and its descendants, ignoring a race with its own exit.</summary>
    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { /* already exited */ }
        catch (Win32Exception) { /* exited while being killed */ }
    }
}
