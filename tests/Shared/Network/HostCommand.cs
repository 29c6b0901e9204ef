using System.Diagnostics;

namespace Bough.TestSupport;

/// <summary>Runs a host tool (ip, nft, python3) for a test and says what went wrong when it fails.</summary>
public static class HostCommand
{
    /// <summary>Runs to the end; returns exit code and both streams.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, IEnumerable<string> args,
        string? stdin = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish");
        }
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs and throws with the tool's own message unless it exits 0; returns stdout.</summary>
    public static async Task<string> CheckAsync(string file, params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(file, args);
        if (code != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {code}: {stderr.Trim()}");
        return stdout;
    }

    /// <summary>Debian's python3 (a pyenv shim under /root is unreadable to other uids), else the one on PATH.</summary>
    public static string Python3 => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}
