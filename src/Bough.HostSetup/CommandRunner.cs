using System.Diagnostics;
using System.Text;

namespace Bough.HostSetup;

/// <summary>What a finished external command returned.</summary>
public sealed record CommandResult(string FileName, IReadOnlyList<string> Arguments, int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The command as a user could paste it into a shell (for error messages).</summary>
    public string CommandLine => CommandRunner.Quote(FileName, Arguments);
}

/// <summary>An external command exited non-zero; the message quotes the command and its stderr.</summary>
public sealed class CommandFailedException(CommandResult result)
    : Exception(Describe(result))
{
    public CommandResult Result { get; } = result;

    private static string Describe(CommandResult r)
    {
        var err = r.Stderr.Trim();
        if (err.Length == 0) err = r.Stdout.Trim();
        if (err.Length > 4000) err = "..." + err[^4000..];
        return $"'{r.CommandLine}' failed with exit code {r.ExitCode}" + (err.Length > 0 ? $": {err}" : " (no output)");
    }
}

/// <summary>Options for <see cref="CommandRunner.RunAsync"/>.</summary>
public sealed record CommandOptions
{
    public string? WorkingDirectory { get; init; }
    public string? Stdin { get; init; }
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
    /// <summary>Killed (whole process tree) when this elapses; null waits forever.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>
    /// The umask the tool runs with (<see cref="ChildUmask"/>); null: this process's own, which is 077 in the daemon.
    /// Set <see cref="ProcessUmask.Shared"/> for tools whose files other users or a guest's users must read.
    /// </summary>
    public UnixFileMode? Umask { get; init; }
}

/// <summary>
/// Runs host tools (apt-get, dpkg-deb, mkfs.ext4, qemu-img...). Arguments are passed as a list,
/// never through a shell, so paths with spaces or quotes are safe. Cancellation kills the process
/// tree so nothing is left running behind a cancelled setup.
/// </summary>
public static class CommandRunner
{
    /// <summary>Runs and returns whatever happened; a missing executable throws <see cref="SetupException"/>.</summary>
    public static async Task<CommandResult> RunAsync(string fileName, IEnumerable<string> arguments,
        CommandOptions? options = null, CancellationToken ct = default)
    {
        options ??= new CommandOptions();
        var args = arguments.ToList();
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = options.WorkingDirectory ?? "",
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (options.Environment is not null)
            foreach (var (k, v) in options.Environment) psi.Environment[k] = v;
        // Tools must talk English so that errors we quote and parse are predictable.
        psi.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = psi };
        try
        {
            if (options.Umask is { } mask) ChildUmask.Apply(psi, mask);
            if (!process.Start())
                throw new SetupException($"could not start '{fileName}'");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SetupException($"could not run '{fileName}': {e.Message}. Is it installed? (run 'bough doctor')", e);
        }

        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (options.Stdin is not null)
                await process.StandardInput.WriteAsync(options.Stdin.AsMemory(), ct);
            process.StandardInput.Close();
        }
        catch (IOException) { /* the tool exited without reading stdin; its exit code tells */ }

        using var timeoutCts = options.Timeout is { } t ? new CancellationTokenSource(t) : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeoutCts.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            await process.WaitForExitAsync(CancellationToken.None);
            if (ct.IsCancellationRequested) throw;
            throw new TimeoutException($"'{Quote(fileName, args)}' did not finish within {options.Timeout}; killed. stderr: {(await stderr).Trim()}");
        }

        return new CommandResult(fileName, args, process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs and throws <see cref="CommandFailedException"/> (quoting stderr) on a non-zero exit.</summary>
    public static async Task<CommandResult> RunCheckedAsync(string fileName, IEnumerable<string> arguments,
        CommandOptions? options = null, CancellationToken ct = default)
    {
        var r = await RunAsync(fileName, arguments, options, ct);
        return r.Succeeded ? r : throw new CommandFailedException(r);
    }

    /// <summary>Kills the process and its children, ignoring races with its own exit.</summary>
    public static void Kill(Process process)
    {
        try { if (!process.HasExited) process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    /// <summary>Shell-quotes a command line for display.</summary>
    public static string Quote(string fileName, IEnumerable<string> args)
    {
        var sb = new StringBuilder(QuoteArg(fileName));
        foreach (var a in args) sb.Append(' ').Append(QuoteArg(a));
        return sb.ToString();
    }

    private static string QuoteArg(string a) =>
        a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? a
            : "'" + a.Replace("'", "'\\''") + "'";
}
